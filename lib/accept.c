/* accept: see accept.h. The per-connection errors are those accept(2) lists as passed on from
 * the new socket (Linux), plus EINTR and ECONNABORTED. */
#include "accept.h"

#include <errno.h>

int accept_error_is_transient(int err)
{
	switch (err) {
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
	case EPERM:
		return 1;
	default:
		return 0;
	}
}
