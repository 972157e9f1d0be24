// kernels.cc: the real kernel source (../all.cu), compiled by g++ against
// emu.h, behind a C entry point that launches a kernel by name with
// cuLaunchKernel-style packed arguments.
#include "../all.cu"
#include "selftest.cuh"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "api.h"

namespace {

using Entry = std::string (*)(dim3, dim3, size_t, void**);

#define K(name) \
	{ #name, [](dim3 g, dim3 b, size_t s, void** p) { return emu::launch_packed(g, b, s, name, p); } }

const std::map<std::string, Entry>& table() {
	static const std::map<std::string, Entry> t = {
		K(matmul_f32),       K(matmul_f32_big), K(matmul_tf32),       K(layernorm_f32),      K(gelu_new_f32),     K(add_f32),
		K(copy_f32),         K(embed_f32),          K(attention_f32),    K(attn_apply_f32),
		K(ablate_heads_f32), K(ablate_rows_f32),    K(logit_partials_f32), K(logit_lse_f32),
		K(gelu_erf_f32),     K(rotary_f32),
		K(emu_selftest_shfl), K(emu_selftest_reduce),
		K(matmul_tn_f32),    K(colsum_f32),         K(layernorm_backward_f32), K(layernorm_backward_wb_f32),
		K(gelu_new_backward_f32), K(gelu_erf_backward_f32), K(embed_backward_f32), K(softmax_xent_backward_f32),
		K(attention_backward_dq_f32), K(attention_backward_dkv_f32),
	};
	return t;
}

// The stricter emulator's own tests (selftest.cuh), apart from the kernels' table.
const std::map<std::string, Entry>& selftests() {
	static const std::map<std::string, Entry> t = {
		K(emu_selftest_reset), K(emu_selftest_blocks), K(emu_selftest_legacy), K(emu_selftest_bounds),
		K(emu_selftest_mask),
	};
	return t;
}

Entry lookup(const char* name) {
	auto it = table().find(name);
	if (it != table().end()) return it->second;
	auto st = selftests().find(name);
	return st == selftests().end() ? nullptr : st->second;
}

std::mutex mu;  // static __shared__ arrays are per function: one launch at a time
char errbuf[256];

}  // namespace

extern "C" const char* emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
				  unsigned bz, unsigned shmem, void** params) {
	std::lock_guard<std::mutex> lock(mu);
	Entry k = lookup(name);
	if (!k) {
		snprintf(errbuf, sizeof errbuf, "emu: no kernel %s", name);
		return errbuf;
	}
	std::string e = k(dim3(gx, gy, gz), dim3(bx, by, bz), shmem, params);
	if (!e.empty()) {
		snprintf(errbuf, sizeof errbuf, "emu: %s: %s", name, e.c_str());
		return errbuf;
	}
	return nullptr;
}

extern "C" int emu_has(const char* name) { return lookup(name) ? 1 : 0; }
