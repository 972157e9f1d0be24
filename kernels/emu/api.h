// api.h: the C entry points of the emulator, for cgo.
#pragma once
#ifdef __cplusplus
extern "C" {
#endif
// emu_launch runs kernel name synchronously; NULL or an error message.
const char* emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
		       unsigned bz, unsigned shmem, void** params);
int emu_has(const char* name);
#ifdef __cplusplus
}
#endif
