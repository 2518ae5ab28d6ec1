/*
 * ref — flexible references (mappings/README.md, `ref`): "scheme:id" with scheme erp
 * (an ERP key), ssn (a NIR) or troops (a platform UUID).
 */
#ifndef HRSYNC_REF_H
#define HRSYNC_REF_H

#include <stdbool.h>
#include <stddef.h>

enum ref_scheme { REF_ERP, REF_SSN, REF_TROOPS };

/*
 * Split and validate s. On success *id points into s (after the colon); for ssn the
 * normalised NIR is written to nir_norm (16 bytes). On failure why says what is wrong
 * (never echoing a NIR).
 */
bool ref_parse(const char *s, enum ref_scheme *scheme, const char **id, char nir_norm[16], char *why,
	       size_t whylen);
bool uuid_valid(const char *s);
const char *ref_scheme_name(enum ref_scheme s);

#endif
