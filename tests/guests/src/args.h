/* args.h: command line parsing shared by the guests. */
#ifndef GUEST_ARGS_H
#define GUEST_ARGS_H

#include "guest.h"

/* Parse the word after "limit" as the echo request limit; abort if bad. */
static inline uint64_t args_parse_limit(const char **cursor)
{
    char word[32];
    uint64_t limit;

    if (!guest_next_word(cursor, word, sizeof(word)) ||
        !guest_parse_uint(word, &limit) || limit == 0)
        guest_abort("'limit' needs a positive number of echo requests");
    return limit;
}

#endif /* GUEST_ARGS_H */
