/* format.c: a small vsnprintf for the guests' console output. */
#include "guest.h"

struct out {
    char *buf;
    size_t size;
    size_t len; /* characters produced, even past size */
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void put_padded(struct out *o, const char *s, size_t n, int width,
                       bool left, char pad)
{
    int fill = width > (int)n ? width - (int)n : 0;

    if (!left) {
        for (; fill > 0; fill--)
            put(o, pad);
    }
    for (size_t i = 0; i < n; i++)
        put(o, s[i]);
    for (; fill > 0; fill--)
        put(o, ' ');
}

static void put_number(struct out *o, uint64_t v, bool negative,
                       unsigned base, bool upper, int width, bool left,
                       char pad)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);

    if (negative) {
        if (pad == '0') {
            put(o, '-');
            width--;
        } else {
            tmp[n++] = '-';
        }
    }
    char rev[24];
    for (size_t i = 0; i < n; i++)
        rev[i] = tmp[n - 1 - i];
    put_padded(o, rev, n, width, left, left ? ' ' : pad);
}

int guest_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { .buf = buf, .size = size, .len = 0 };

    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(&o, *p);
            continue;
        }
        p++;

        bool left = false;
        char pad = ' ';
        for (;; p++) {
            if (*p == '-')
                left = true;
            else if (*p == '0')
                pad = '0';
            else
                break;
        }
        int width = 0;
        while (*p >= '0' && *p <= '9')
            width = width * 10 + (*p++ - '0');
        int longs = 0;
        bool size_t_arg = false;
        for (;; p++) {
            if (*p == 'l')
                longs++;
            else if (*p == 'z')
                size_t_arg = true;
            else
                break;
        }

        switch (*p) {
        case 'd':
        case 'i': {
            int64_t v;
            if (longs || size_t_arg)
                v = va_arg(ap, long);
            else
                v = va_arg(ap, int);
            uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
            put_number(&o, mag, v < 0, 10, false, width, left, pad);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            uint64_t v;
            if (longs || size_t_arg)
                v = va_arg(ap, unsigned long);
            else
                v = va_arg(ap, unsigned int);
            put_number(&o, v, false, *p == 'u' ? 10 : 16, *p == 'X', width,
                       left, pad);
            break;
        }
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_number(&o, (uintptr_t)va_arg(ap, void *), false, 16, false,
                       width, left, pad);
            break;
        case 'c': {
            char c = (char)va_arg(ap, int);
            put_padded(&o, &c, 1, width, left, ' ');
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s == NULL)
                s = "(null)";
            put_padded(&o, s, strlen(s), width, left, ' ');
            break;
        }
        case '%':
            put(&o, '%');
            break;
        case '\0':
            p--;
            break;
        default:
            put(&o, '%');
            put(&o, *p);
            break;
        }
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

int guest_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = guest_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void guest_printf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    int n = guest_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(buf))
        n = sizeof(buf) - 1;
    guest_console_write(buf, (size_t)n);
}
