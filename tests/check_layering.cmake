# The layering rule (docs/architecture.md, "Layers"): base/ includes nothing
# of the project's other folders; devices/ and firmware/ include base/ (and
# themselves) but nothing from vmm/, and not each other. Run by every build
# (target check_layering) and by ctest (layering.includes).
set(rules
  "base|vmm/|devices/|firmware/|guest-kernel/"
  "devices|vmm/|firmware/|guest-kernel/"
  "firmware|vmm/|devices/|guest-kernel/")
set(violations "")
foreach(rule ${rules})
  string(REPLACE "|" ";" parts "${rule}")
  list(POP_FRONT parts layer)
  file(GLOB_RECURSE files ${SOURCE_DIR}/${layer}/*.cc ${SOURCE_DIR}/${layer}/*.h)
  foreach(file ${files})
    file(STRINGS ${file} includes REGEX "^#include \"")
    foreach(line ${includes})
      foreach(forbidden ${parts})
        if(line MATCHES "^#include \"${forbidden}")
          file(RELATIVE_PATH rel ${SOURCE_DIR} ${file})
          string(APPEND violations "  ${rel}: ${line}\n")
        endif()
      endforeach()
    endforeach()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "layering: a lower layer includes a higher one "
                      "(docs/architecture.md, \"Layers\"):\n${violations}")
endif()
