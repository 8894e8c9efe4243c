/* accept: how a listener tells an accept(2) error of one connection, after which the next
 * accept may well succeed, from one that would fail again at once (out of descriptors or
 * memory), after which a listener should stop accepting for a while instead of spinning. Shared
 * by nomad-local's event loop and poseidon-wsgate's listener. */
#ifndef POSEIDON_ACCEPT_H
#define POSEIDON_ACCEPT_H

/* 1 when err (errno after accept/accept4) concerned that one connection or an interruption:
 * accept again; 0 for EAGAIN and for errors that would repeat (EMFILE, ENFILE, ENOBUFS, ENOMEM,
 * ...). */
int accept_error_is_transient(int err);

#endif
