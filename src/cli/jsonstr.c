/* jsonstr.c - JSON strings from arbitrary bytes (file names are bytes, not
 * text). Valid UTF-8 is copied, control characters are escaped, and every
 * byte that is not part of a valid UTF-8 sequence becomes U+FFFD, so the
 * output is always valid JSON (RFC 8259) for strict parsers too; records
 * then carry the exact bytes in hex as well (cli_json_path). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 (invalid byte):
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int n;
    unsigned min, cp;
    if ((c & 0xe0) == 0xc0) n = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) n = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    for (int k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

int cli_utf8_valid(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = utf8_seq(p);
        if (!n) return 0;
        p += n;
    }
    return 1;
}

void cli_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = utf8_seq(p);
        unsigned ch = *p;
        if (!n) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch == '\r') fputs("\\r", f);
        else if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\u%04x", ch);
        else fwrite(p, 1, (size_t)n, f);
        p += n;
    }
    fputc('"', f);
}

void cli_json_path(FILE *f, const char *key, const char *path) {
    fprintf(f, "\"%s\": ", key);
    cli_json_str(f, path);
    if (!cli_utf8_valid(path)) {
        fprintf(f, ", \"%s_hex\": \"", key);
        for (const unsigned char *p = (const unsigned char *)path; *p; p++) fprintf(f, "%02x", *p);
        fputc('"', f);
    }
}
