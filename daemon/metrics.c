/*
 * metrics — the Prometheus textfile of SPEC §9. (Being built: issue #5.)
 */
#include "cli.h"
#include "sync.h"

bool metrics_write(const struct config *cfg, const struct run_result *res)
{
	(void)res;
	return cfg->metrics_textfile == NULL;
}
