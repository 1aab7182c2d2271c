/* guest-kernel/abi/vmmfs.h must stay C-compatible: this C11 program uses it
 * (built with -Wall -Wextra -Wconversion -Werror) and checks a round trip. */
#include <string.h>

#include "abi/vmmfs.h"

int main(void) {
  struct vmmfs_super s;
  struct vmmfs_entry dir[2];
  uint32_t bad = 0;
  vmmfs_make_super(&s, 64);
  memset(dir, 0, sizeof(dir));
  vmmfs_make_entry(&dir[1], "c.txt", 5, vmmfs_find_free(dir, 2, &s, 2), 700, 2,
                   vmmfs_fnv1a(VMMFS_FNV_INIT, "x", 1));
  if (vmmfs_check_super(&s, 64) != VMMFS_OK) return 1;
  if (vmmfs_check_dir(dir, 2, &s, &bad) != VMMFS_OK || bad != VMMFS_NO_ENTRY) return 2;
  if (dir[1].first_sector != 9 || vmmfs_find_free(dir, 2, &s, 1) != 11) return 3;
  return 0;
}
