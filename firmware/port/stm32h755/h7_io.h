/*
 * h7_io.h - how the port's drivers touch registers and time, so that the
 * same driver source runs on the chip and, against a recorded register
 * model, on the host (tests/firmware).
 *
 * On the chip RD/WR are plain volatile accesses of the regs.h registers and
 * h7_io_ms() reads the SysTick counter (kept in DTCM, safe to read from
 * ITCM code while bank 1 is busy). Built with H7_HOST_MODEL, they are calls
 * into the test's model, by address: regs.h's REG32() names are lvalues,
 * so &REG is the register's address without any access.
 */
#ifndef H7_IO_H
#define H7_IO_H

#include <stdint.h>

#ifdef H7_HOST_MODEL
uint32_t h7_io_rd(uintptr_t addr);
void h7_io_wr(uintptr_t addr, uint32_t value);
uint32_t h7_io_ms(void);
#else
extern volatile uint32_t h7_ticks_ms; /* system.c, SysTick */
static inline uint32_t h7_io_rd(uintptr_t addr)
{
	return *(volatile uint32_t *)addr;
}
static inline void h7_io_wr(uintptr_t addr, uint32_t value)
{
	*(volatile uint32_t *)addr = value;
}
static inline uint32_t h7_io_ms(void)
{
	return h7_ticks_ms;
}
#endif

#define RD(reg) h7_io_rd((uintptr_t) & (reg))
#define WR(reg, v) h7_io_wr((uintptr_t) & (reg), (uint32_t)(v))
#define SETBITS(reg, m) WR(reg, RD(reg) | (m))
#define CLRBITS(reg, m) WR(reg, RD(reg) & ~(uint32_t)(m))

#endif
