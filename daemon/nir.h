/*
 * nir — the French social security number (NIR, "numéro de sécurité sociale"):
 * 13 characters and a 2-digit key, spaces ignored. The key is 97 - (number mod 97);
 * for Corsica the department letters 2A and 2B count as 19 and 18 (INSEE rule).
 * NIRs are personal data: nir_mask() is the only form that may reach a log.
 */
#ifndef HRSYNC_NIR_H
#define HRSYNC_NIR_H

#include <stdbool.h>

enum nir_status { NIR_OK, NIR_BAD_LENGTH, NIR_BAD_CHAR, NIR_BAD_SEX, NIR_BAD_MONTH, NIR_BAD_KEY };

/* Validate in; on NIR_OK norm holds the 15 characters, uppercase, without spaces. */
enum nir_status nir_check(const char *in, char norm[16]);
/* The key (1..97) of a 13-character NIR body, or -1 when the body is malformed. */
int nir_key(const char *body13);
const char *nir_status_text(enum nir_status st);
/* "1 85 05 ** *** *** **": sex, year and month kept, the rest starred. */
void nir_mask(const char *value, char *out, unsigned n);

#endif
