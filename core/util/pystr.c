/* pystr.c — Python's str.isspace, strip and capitalize on UTF-8 (CPython 3.8+ semantics, where
 * capitalize puts the first character in title case rather than upper case). */
#include "util/pystr.h"

#include "util/utf8.h"

int pystr_is_space(uint32_t cp) {
    /* CPython's Py_UNICODE_ISSPACE: bidirectional types WS, B and S and category Zs; that is
     * White_Space plus the four information separators */
    return utf8_is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F);
}

void pystr_strip(const char *s, size_t n, size_t *start, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t a = 0, b = n;
    while (a < b) {
        size_t k = utf8_char_len(u[a]);
        if (a + k > b || !pystr_is_space(utf8_decode(u + a, k))) break;
        a += k;
    }
    while (b > a) {
        size_t c = b - 1; /* back to the lead byte of the last character */
        while (c > a && (u[c] & 0xC0) == 0x80) c--;
        if (!pystr_is_space(utf8_decode(u + c, b - c))) break;
        b = c;
    }
    *start = a;
    *len = b - a;
}

/* A run of code points lo..hi that maps to cp + delta: all of them (EVERY), or only the even
 * or odd ones, where upper and lower case alternate (Latin Extended-A/B). */
enum { EVERY, EVEN, ODD };
typedef struct {
    uint32_t lo, hi;
    int32_t delta;
    int which;
} CaseRun;

/* Python's one-character lower-case mappings in the blocks covered (UnicodeData.txt). */
static const CaseRun LOWER[] = {
    {'A', 'Z', 32, EVERY},     {0xC0, 0xD6, 32, EVERY},     {0xD8, 0xDE, 32, EVERY},
    {0x100, 0x12F, 1, EVEN},   {0x132, 0x137, 1, EVEN},     {0x139, 0x148, 1, ODD},
    {0x14A, 0x177, 1, EVEN},   {0x178, 0x178, -121, EVERY}, {0x179, 0x17E, 1, ODD},
    {0x1C4, 0x1C4, 2, EVERY},  {0x1C5, 0x1C5, 1, EVERY},    {0x1C7, 0x1C7, 2, EVERY},
    {0x1C8, 0x1C8, 1, EVERY},  {0x1CA, 0x1CA, 2, EVERY},    {0x1CB, 0x1CB, 1, EVERY},
    {0x1CD, 0x1DC, 1, ODD},    {0x1DE, 0x1EF, 1, EVEN},     {0x1F1, 0x1F1, 2, EVERY},
    {0x1F2, 0x1F2, 1, EVERY},  {0x1F4, 0x1F4, 1, EVERY},    {0x1F8, 0x21F, 1, EVEN},
    {0x222, 0x233, 1, EVEN},   {0x386, 0x386, 38, EVERY},   {0x388, 0x38A, 37, EVERY},
    {0x38C, 0x38C, 64, EVERY}, {0x38E, 0x38F, 63, EVERY},   {0x391, 0x3A1, 32, EVERY},
    {0x3A3, 0x3AB, 32, EVERY}, {0x400, 0x40F, 80, EVERY},   {0x410, 0x42F, 32, EVERY},
    {0x460, 0x481, 1, EVEN},   {0x48A, 0x4BF, 1, EVEN},     {0x4C0, 0x4C0, 15, EVERY},
    {0x4C1, 0x4CE, 1, ODD},    {0x4D0, 0x52F, 1, EVEN},
};

/* ... and title-case mappings (for a lower-case letter, its upper case but for the
 * digraphs, whose title case is their middle form: ǆ -> ǅ). */
static const CaseRun TITLE[] = {
    {'a', 'z', -32, EVERY},      {0xB5, 0xB5, 0x2E7, EVERY}, {0xE0, 0xF6, -32, EVERY},
    {0xF8, 0xFE, -32, EVERY},    {0xFF, 0xFF, 121, EVERY},   {0x101, 0x12F, -1, ODD},
    {0x131, 0x131, -232, EVERY}, {0x133, 0x137, -1, ODD},    {0x13A, 0x148, -1, EVEN},
    {0x14B, 0x177, -1, ODD},     {0x17A, 0x17E, -1, EVEN},   {0x17F, 0x17F, -300, EVERY},
    {0x1C4, 0x1C4, 1, EVERY},    {0x1C6, 0x1C6, -1, EVERY},  {0x1C7, 0x1C7, 1, EVERY},
    {0x1C9, 0x1C9, -1, EVERY},   {0x1CA, 0x1CA, 1, EVERY},   {0x1CC, 0x1CC, -1, EVERY},
    {0x1CE, 0x1DC, -1, EVEN},    {0x1DF, 0x1EF, -1, ODD},    {0x1F1, 0x1F1, 1, EVERY},
    {0x1F3, 0x1F3, -1, EVERY},   {0x1F5, 0x1F5, -1, EVERY},  {0x1F9, 0x21F, -1, ODD},
    {0x223, 0x233, -1, ODD},     {0x3AC, 0x3AC, -38, EVERY}, {0x3AD, 0x3AF, -37, EVERY},
    {0x3B1, 0x3C1, -32, EVERY},  {0x3C2, 0x3C2, -31, EVERY}, {0x3C3, 0x3CB, -32, EVERY},
    {0x3CC, 0x3CC, -64, EVERY},  {0x3CD, 0x3CE, -63, EVERY}, {0x430, 0x44F, -32, EVERY},
    {0x450, 0x45F, -80, EVERY},  {0x461, 0x481, -1, ODD},    {0x48B, 0x4BF, -1, ODD},
    {0x4C2, 0x4CE, -1, EVEN},    {0x4CF, 0x4CF, -15, EVERY}, {0x4D1, 0x52F, -1, ODD},
};

static uint32_t map_one(uint32_t cp, const CaseRun *runs, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (cp >= runs[i].lo && cp <= runs[i].hi &&
            (runs[i].which == EVERY || (int)(cp & 1) == (runs[i].which == ODD)))
            return (uint32_t)((int32_t)cp + runs[i].delta);
    return cp;
}

/* Python's full mapping of cp (title case for the first character, else lower case) into
 * out; returns how many code points (the few that expand: İ, ß, ŉ). */
static int map_full(uint32_t cp, int title, uint32_t out[2]) {
    if (!title && cp == 0x130) { /* İ -> i + combining dot above */
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    if (title && cp == 0xDF) { /* ß -> Ss */
        out[0] = 'S';
        out[1] = 's';
        return 2;
    }
    if (title && cp == 0x149) { /* ŉ -> ʼN */
        out[0] = 0x2BC;
        out[1] = 'N';
        return 2;
    }
    out[0] = title ? map_one(cp, TITLE, sizeof TITLE / sizeof *TITLE)
                   : map_one(cp, LOWER, sizeof LOWER / sizeof *LOWER);
    return 1;
}

int pystr_capitalize(const char *s, size_t n, StrBuf *out) {
    const unsigned char *u = (const unsigned char *)s;
    if (strbuf_reserve(out, n + 8) || strbuf_put(out, "", 0)) return -1;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char_len(u[i]);
        if (i + k > n) return strbuf_put(out, s + i, n - i); /* a cut character: as it is */
        uint32_t mapped[2];
        int m = map_full(utf8_decode(u + i, k), i == 0, mapped);
        for (int j = 0; j < m; j++) {
            char enc[4];
            if (strbuf_put(out, enc, utf8_encode(mapped[j], enc))) return -1;
        }
        i += k;
    }
    return 0;
}
