/* SPDX-License-Identifier: MIT */
/*
 * escape.c - printing names the tools did not choose. `mempool ls` and
 * mempool-top list every /dev/shm/mempool.* entry, and anyone can create
 * one with any name: quotes, newlines, terminal escape sequences, bytes
 * that are not UTF-8. In JSON such a name is written as a correctly
 * escaped string (so the document always parses and no name can add
 * fields); in text every byte outside printable ASCII is shown as \xHH.
 */
#include "cli.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0:
 * no overlongs, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    uint32_t c;
    size_t len, i;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, c = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, c = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, c = s[0] & 0x07u;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
        (len == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    return len;
}

void cli_json_string(FILE *f, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(u + i, n - i);
        if (l == 0) {
            fputs("\\ufffd", f);       /* not UTF-8: the replacement char */
            i++;
        } else if (l > 1) {
            fwrite(u + i, 1, l, f);
            i += l;
        } else {
            unsigned char c = u[i++];
            if (c == '"' || c == '\\')
                fprintf(f, "\\%c", c);
            else if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

const char *cli_printable(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    if (!len)
        return "";
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        char esc[5];
        const char *piece = esc;
        if (*u == '\\')
            piece = "\\\\";
        else if (*u >= 0x20 && *u < 0x7f)
            esc[0] = (char)*u, esc[1] = '\0';
        else
            snprintf(esc, sizeof esc, "\\x%02x", *u);
        size_t pl = strlen(piece);
        if (o + pl >= len)
            break;
        memcpy(buf + o, piece, pl);
        o += pl;
    }
    buf[o] = '\0';
    return buf;
}
