/*
 * CRC-32C (Castagnoli): reflected polynomial 0x82F63B78 (0x1EDC6F41 in normal
 * form), initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF, so the CRC of the
 * nine ASCII bytes "123456789" is 0xE3069283 (the standard check value; RFC
 * 3720 uses the same CRC for iSCSI). Two implementations that must agree:
 * portable slicing-by-8 tables, and the SSE4.2 crc32 instruction on x86-64
 * when the CPU has it (chosen at run time).
 * SPDX-License-Identifier: MIT
 */
#include "io/ckpt_internal.h"

#include "io/crc32c_table.h"

static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t sgd__crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    const uint32_t(*t)[256] = sgd__crc32c_table;
    while (n >= 8) {
        uint32_t lo = load_le32(p) ^ c;
        uint32_t hi = load_le32(p + 4);
        c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
            t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
    return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SGD__CRC32C_HW 1

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* x86 is little-endian: the bytes in file order */
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#endif

bool sgd__crc32c_hw_available(void)
{
#ifdef SGD__CRC32C_HW
    return __builtin_cpu_supports("sse4.2");
#else
    return false;
#endif
}

uint32_t sgd__crc32c_hw(uint32_t crc, const void *data, size_t n)
{
#ifdef SGD__CRC32C_HW
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw(crc, data, n);
#endif
    return sgd__crc32c_sw(crc, data, n);
}

uint32_t sgd__crc32c(uint32_t crc, const void *data, size_t n)
{
    return sgd__crc32c_hw(crc, data, n);
}
