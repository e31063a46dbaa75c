/* Text from telemetry, made safe for a terminal. */
#ifndef EDR_TEXT_H
#define EDR_TEXT_H

#include <stdio.h>

/* Writes s to f with every byte that could drive a terminal made visible:
 * backslash as "\\", newline as "\n", tab as "\t", other control bytes and
 * DEL as "\xHH" (so an escape sequence in a command line is printed, never
 * obeyed). Bytes >= 0x80 pass through (UTF-8 stays readable). s may be NULL
 * (prints nothing). */
void edr_text_fput_escaped(FILE *f, const char *s);

#endif
