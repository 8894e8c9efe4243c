/* The cases of test_nginx.c through Apache running the repository's site,
 * deploy/apache/poseidon.conf (issue 7): the same stack, the same requests; where the two servers
 * differ, test_nginx.c says why. Apache runs in the foreground (-DFOREGROUND) with a main context
 * of the harness's own (its modules loaded from /usr/lib/apache2/modules) and the site's values
 * as Defines. */
#define FRONT_APACHE 1
#include "test_nginx.c"
