/**
 * @file flasher/common.h
 * @brief Export macro and API version shared by every public header.
 */
#ifndef FLASHER_COMMON_H
#define FLASHER_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FLASHER_BUILDING)
#define FLASHER_API __attribute__((visibility("default")))
#else
#define FLASHER_API
#endif

/** API version callers can test at compile time (major*10000+minor*100+patch). */
#define FLASHER_API_VERSION 100

#ifdef __cplusplus
}
#endif

#endif
