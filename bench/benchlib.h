/*
 * benchlib — what bench/seedlinks.c and bench/mapbench.c share besides the engine's own
 * lookup cache (daemon/lookups.h, lookups_find as the mapping's lookup callback): the
 * fingerprint, written as daemon/sync.c's (static there), so the ids and fingerprints
 * match a real run's.
 */
#ifndef HRSYNC_BENCHLIB_H
#define HRSYNC_BENCHLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lookups.h"
#include "mapping.h"
#include "strmap.h"

/* The engine's fingerprint (sync.c fingerprint()): SHA-256 of the payload's compact JSON. */
#include "sha256.h"
static void bench_fingerprint(const struct jv *payload, char out[65])
{
	char *s = jv_dumps(payload);
	sha256_hex(s, strlen(s), out);
	free(s);
}

#endif
