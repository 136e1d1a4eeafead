/* Private session calls for our own tools and tests (not in the public API). */
#ifndef FLASHER_SESSION_INTERNAL_H
#define FLASHER_SESSION_INTERNAL_H

#include "flasher/session.h"
#include "flboot/proto.h"

/** STATUS request: boot state, open transfer, flash operation counter. */
int flasher__session_status(flasher_session *s, flboot_status *out);

#endif
