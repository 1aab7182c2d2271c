# clang-format --dry-run -Werror over the host code (base/, vmm/, devices/,
# firmware/, tools/, tests/) and the guest kernel (guest-kernel/), all with the
# repository's .clang-format: the same files `make check-format` checks.
file(GLOB_RECURSE files
  ${SOURCE_DIR}/base/*.cc ${SOURCE_DIR}/base/*.h
  ${SOURCE_DIR}/vmm/*.cc ${SOURCE_DIR}/vmm/*.h
  ${SOURCE_DIR}/devices/*.cc ${SOURCE_DIR}/devices/*.h
  ${SOURCE_DIR}/firmware/*.cc ${SOURCE_DIR}/firmware/*.h
  ${SOURCE_DIR}/tools/*.cc ${SOURCE_DIR}/tools/*.h
  ${SOURCE_DIR}/tests/*.cc ${SOURCE_DIR}/tests/*.h
  ${SOURCE_DIR}/guest-kernel/*.cc ${SOURCE_DIR}/guest-kernel/*.h)
list(FILTER files EXCLUDE REGEX "/tests/fixtures/")
execute_process(COMMAND ${CLANG_FORMAT} --dry-run -Werror ${files}
                RESULT_VARIABLE result ERROR_VARIABLE errors)
if(NOT result EQUAL 0)
  string(SUBSTRING "${errors}" 0 4000 head)
  message(FATAL_ERROR "clang-format: files need formatting (run `make format`):\n${head}")
endif()
