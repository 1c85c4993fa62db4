/*
 * Layout of the public structs, pinned (libfuse's test_abi.c). A failure here
 * means an ABI break: the SONAME must change, or the change must be undone.
 * Sizes are for LP64 (x86-64, aarch64); other data models skip the checks.
 */
#include "util/sgdtest.h"

#include <stddef.h>

#define PIN_SIZE(type, size) assert_int_equal(sizeof(type), (size))
#define PIN_OFFSET(type, field, off) assert_int_equal(offsetof(type, field), (off))

static void test_core_structs(void **state)
{
    (void)state;
    PIN_SIZE(sgd_allocator, 32);
    PIN_OFFSET(sgd_allocator, malloc_fn, 0);
    PIN_OFFSET(sgd_allocator, realloc_fn, 8);
    PIN_OFFSET(sgd_allocator, free_fn, 16);
    PIN_OFFSET(sgd_allocator, user, 24);
    PIN_SIZE(sgd_status, 4);
}

int main(void)
{
    if (sizeof(void *) != 8 || sizeof(long) != 8) {
        print_message("layout pins are for LP64; skipped\n");
        return 77; /* meson: skipped */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_structs),
    };
    return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
