/* pyjson.c — Python's json.dumps text (see pyjson.h). */
#include "eval/pyjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pyjson_float_repr(double x, char *out) {
    if (isnan(x)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(x)) {
        strcpy(out, x > 0 ? "Infinity" : "-Infinity");
        return;
    }
    /* the shortest correctly rounded digit string that reads back as x (what repr's
     * David Gay mode 0 finds) */
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    /* e is "[-]d[.ddd]e[+-]XX": split into sign, digits and the decimal point's place */
    const char *p = e;
    char digits[24];
    int nd = 0, neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    int decpt = atoi(p + 1) + 1; /* x = 0.DIGITS * 10^decpt */
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt > -4 && decpt <= 16) {
        /* positional, as Python for exponents -4 .. 15 (repr's rule), always with a digit after the
         * point */
        if (decpt <= 0) {
            o += sprintf(o, "0.");
            for (int i = 0; i < -decpt; i++) *o++ = '0';
            o += sprintf(o, "%s", digits);
        } else if (decpt >= nd) {
            o += sprintf(o, "%s", digits);
            for (int i = nd; i < decpt; i++) *o++ = '0';
            o += sprintf(o, ".0");
        } else {
            o += sprintf(o, "%.*s.%s", decpt, digits, digits + decpt);
        }
        *o = '\0';
        return;
    }
    /* exponent form: d[.ddd]e[+-]XX with at least two exponent digits */
    int exp10 = decpt - 1;
    o += sprintf(o, "%c", digits[0]);
    if (nd > 1) o += sprintf(o, ".%s", digits + 1);
    sprintf(o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
}

cJSON *pyjson_float(double x) {
    if (!isfinite(x)) return cJSON_CreateNull();
    char text[32];
    pyjson_float_repr(x, text);
    return cJSON_CreateRaw(text);
}

int pyjson_add_float(cJSON *obj, const char *key, double x) {
    cJSON *v = pyjson_float(x);
    if (!v) return -1;
    if (!cJSON_AddItemToObject(obj, key, v)) {
        cJSON_Delete(v);
        return -1;
    }
    return 0;
}

int pyjson_put_string(StrBuf *out, const char *s) {
    int bad = strbuf_put(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && !bad; p++) {
        switch (*p) {
        case '"':
            bad = strbuf_puts(out, "\\\"");
            break;
        case '\\':
            bad = strbuf_puts(out, "\\\\");
            break;
        case '\n':
            bad = strbuf_puts(out, "\\n");
            break;
        case '\r':
            bad = strbuf_puts(out, "\\r");
            break;
        case '\t':
            bad = strbuf_puts(out, "\\t");
            break;
        case '\b':
            bad = strbuf_puts(out, "\\b");
            break;
        case '\f':
            bad = strbuf_puts(out, "\\f");
            break;
        default:
            bad =
                *p < 0x20 ? strbuf_printf(out, "\\u%04x", *p) : strbuf_put(out, (const char *)p, 1);
        }
    }
    return bad || strbuf_put(out, "\"", 1) ? -1 : 0;
}

static int put_number(StrBuf *out, double v) {
    if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0)
        return strbuf_printf(out, "%.0f", v) < 0 ? -1 : 0;
    char text[32];
    pyjson_float_repr(v, text);
    return strbuf_puts(out, text);
}

/* a newline and depth * indent spaces (indent >= 0), nothing on one line */
static int put_break(StrBuf *out, int indent, int depth) {
    if (indent < 0) return 0;
    if (strbuf_put(out, "\n", 1) != 0) return -1;
    for (int i = 0; i < indent * depth; i++)
        if (strbuf_put(out, " ", 1) != 0) return -1;
    return 0;
}

static int dump(const cJSON *item, int indent, int depth, StrBuf *out) {
    if (cJSON_IsRaw(item)) return strbuf_puts(out, item->valuestring);
    if (cJSON_IsNull(item)) return strbuf_puts(out, "null");
    if (cJSON_IsTrue(item)) return strbuf_puts(out, "true");
    if (cJSON_IsFalse(item)) return strbuf_puts(out, "false");
    if (cJSON_IsNumber(item)) return put_number(out, item->valuedouble);
    if (cJSON_IsString(item)) return pyjson_put_string(out, item->valuestring);
    const int is_object = cJSON_IsObject(item);
    if (!is_object && !cJSON_IsArray(item)) return -1;
    if (!item->child) return strbuf_puts(out, is_object ? "{}" : "[]");
    if (strbuf_puts(out, is_object ? "{" : "[") != 0) return -1;
    for (const cJSON *c = item->child; c; c = c->next) {
        if (c != item->child && strbuf_puts(out, indent < 0 ? ", " : ",") != 0) return -1;
        if (put_break(out, indent, depth + 1) != 0) return -1;
        if (is_object &&
            (pyjson_put_string(out, c->string ? c->string : "") != 0 || strbuf_puts(out, ": ")))
            return -1;
        if (dump(c, indent, depth + 1, out) != 0) return -1;
    }
    if (put_break(out, indent, depth) != 0) return -1;
    return strbuf_puts(out, is_object ? "}" : "]");
}

int pyjson_dump(const cJSON *item, int indent, StrBuf *out) {
    return dump(item, indent, 0, out);
}
