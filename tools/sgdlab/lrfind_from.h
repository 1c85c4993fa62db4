/*
 * Reading an (lr, loss) range-test curve from a file, for `sgdlab lr-find
 * --from` (lrfind_from.c). SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TOOL_LRFIND_FROM_H
#define SGDLAB_TOOL_LRFIND_FROM_H

#include "logread.h"

#include <stddef.h>

/*
 * Reads the curve in path: *lr and *loss (malloc'd, the caller frees them)
 * get *n points in the file's order. Returns 0, or -1 with a message in err.
 */
int lrfind_read_curve(const char *path, const logread_opts *ro, double **lr, double **loss, size_t *n, char *err,
                      size_t errcap);

#endif
