/* Text from telemetry, made safe for a terminal. */
#ifndef EDR_TEXT_H
#define EDR_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Length (1-4) of the well-formed UTF-8 sequence at p (at most n bytes),
 * with its code point in *cp; 0 when it is not one: a stray continuation
 * byte, a truncated sequence, an overlong form, a surrogate (U+D800-DFFF)
 * or a code point above U+10FFFF. */
size_t edr_utf8_next(const unsigned char *p, size_t n, uint32_t *cp);

/* 1 when code point cp can change how a terminal or a reader shows the text
 * around it: C0 and C1 controls, DEL, and the bidirectional formatting
 * characters (U+061C, U+200E-200F, U+202A-202E, U+2066-2069), which can
 * make a command line read as something else. */
int edr_text_unsafe_cp(uint32_t cp);

/* Writes s to f with everything that could drive a terminal or disguise the
 * text made visible: backslash as "\\", newline as "\n", tab as "\t", other
 * C0 controls and DEL as "\xHH", C1 controls and bidirectional formatting
 * characters as "\u{HHHH}", and bytes that are not well-formed UTF-8 as
 * "\xHH" (a lone 0x9b byte is CSI to an 8-bit terminal). Other UTF-8 stays
 * readable. s may be NULL (prints nothing). */
void edr_text_fput_escaped(FILE *f, const char *s);

/* The same escaped form in out (cap bytes with the NUL), cut at a whole
 * character when it does not fit; returns its length. For log lines. */
size_t edr_text_escape(char *out, size_t cap, const char *s);

#endif
