/* Prints the version of the headers and of the libsgdlab that was loaded. */
#include <sgdlab/sgdlab.h>

#include <stdio.h>

int main(void)
{
    printf("headers %s, library %s\n", SGD_VERSION_STRING, sgd_version_string());
    if (sgd_version_number() / 10000 != SGD_VERSION_MAJOR) {
        fprintf(stderr, "ABI mismatch: built against %d.x, running %s\n", SGD_VERSION_MAJOR,
                sgd_version_string());
        return 1;
    }
    printf("%s\n", sgd_status_str(SGD_ERANGE));
    return 0;
}
