/**
 * @file flasher.h
 * @brief Umbrella header of libflasher: include this one.
 */
#ifndef FLASHER_H
#define FLASHER_H

#include "flasher/common.h"
#include "flasher/errors.h"
#include "flasher/version.h"
#include "flasher/package.h"
#include "flasher/transport.h"
#include "flasher/session.h"
#include "flasher/discovery.h"
#include "flasher/sign.h"
#include "flasher/watch.h"

#endif
