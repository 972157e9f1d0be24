package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/runtime/backend"
)

func init() {
	var f modelFlags
	var batch, seq, runs, warmup int
	var seed uint64
	var output string
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure forward-pass speed (tokens/s) on random token ids",
		Long: `bench times the full forward pass with logits for a [batch, seq] batch of
seeded random token ids, as ../shared/bench/torch_bench.py does for PyTorch:
the median over --runs timed runs after --warmup untimed ones.

--output logits (the default, what torch_bench.py times) materialises all
[batch*seq, vocab] logits; --output loss computes the next-token losses
instead, unembedding a chunk of rows at a time as ablations, sweeps and the
probes do, so peak memory no longer grows with batch x seq x vocab.`,
		Example: `  neoscope bench --model benchmarks/model --batch 8 --seq 128 --threads 2 --json`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if batch < 1 || seq < 1 || runs < 1 || warmup < 0 {
				return usagef("--batch, --seq and --runs must be positive")
			}
			if output != "logits" && output != "loss" {
				return usagef("--output %q: want logits or loss", output)
			}
			t0 := time.Now()
			m, err := f.open()
			if err != nil {
				return err
			}
			defer m.Close()
			loadS := time.Since(t0).Seconds()
			if seq > m.Cfg.Context {
				return usagef("--seq %d exceeds the model's context %d", seq, m.Cfg.Context)
			}
			r := rand.New(rand.NewPCG(seed, 0))
			tokens := make([]int32, batch*seq)
			for i := range tokens {
				tokens[i] = int32(r.IntN(m.Cfg.Vocab))
			}
			var times []float64
			for i := 0; i < warmup+runs; i++ {
				t := time.Now()
				s, _, err := m.Run(tokens, batch, seq, nil, false)
				if err != nil {
					return err
				}
				if output == "loss" {
					if _, err := m.NextTokenLosses(s, 0); err != nil {
						s.Close()
						return err
					}
					s.Close()
				} else {
					lt, err := m.LogitsTensor(s, nil)
					if err != nil {
						s.Close()
						return err
					}
					// One value back: the synchronisation point on asynchronous backends.
					var probe [1]float32
					if err := m.BE.DownloadMat(probe[:], backend.Mat{T: lt, Rows: 1, Cols: 1, Stride: 1}); err != nil {
						m.BE.Free(lt)
						s.Close()
						return err
					}
					m.BE.Free(lt)
					s.Close()
				}
				if i >= warmup {
					times = append(times, time.Since(t).Seconds())
				}
			}
			sort.Float64s(times)
			med := times[len(times)/2]
			if len(times)%2 == 0 {
				med = (times[len(times)/2-1] + times[len(times)/2]) / 2
			}
			cfg := m.Cfg
			// Multiply-adds per token: block matmuls, attention (average visible keys), unembedding.
			C, F, V, L := float64(cfg.DModel), float64(cfg.DMLP), float64(cfg.Vocab), float64(cfg.Layers)
			flops := 2 * float64(batch*seq) * (L*(4*C*C+2*C*F) + V*C)
			for l := 0; l < cfg.Layers; l++ {
				keys := float64(seq+1) / 2
				if w := cfg.LayerWindow(l); w > 0 && float64(w) < keys {
					keys = float64(w)
				}
				flops += 2 * float64(batch*seq) * 2 * C * keys
			}
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			res := map[string]any{
				"bench": "forward", "output": output, "backend": m.BE.Name(), "batch": batch, "seq": seq, "runs": runs,
				"threads":      runtime.GOMAXPROCS(0),
				"median_s":     round4(med),
				"min_s":        round4(times[0]),
				"tokens_per_s": round1(float64(batch*seq) / med),
				"gflops":       round1(flops / med / 1e9),
				"load_s":       round4(loadS),
				"peak_rss_mb":  round1(float64(ru.Maxrss) / 1024),
				// The float32 weights, resident whatever the file's dtype
				// (F16/BF16 are upcast once): the floor of peak_rss_mb.
				"params":          cfg.Params(),
				"f32_weights_mib": round1(float64(cfg.Params()) * 4 / (1 << 20)),
			}
			if f.JSON {
				return printJSON(os.Stdout, res)
			}
			fmt.Printf("forward %dx%d (%s) on %s, %d threads: %.1f tokens/s (median %.4f s of %d runs, %.1f GFLOP/s), load %.2f s, peak RSS %.1f MB\n",
				batch, seq, output, m.BE.Name(), runtime.GOMAXPROCS(0), res["tokens_per_s"], med, runs, res["gflops"], loadS, res["peak_rss_mb"])
			return nil
		},
	}
	f.register(c)
	c.Flags().IntVar(&batch, "batch", 8, "rows per batch")
	c.Flags().IntVar(&seq, "seq", 128, "tokens per row")
	c.Flags().IntVar(&runs, "runs", 5, "timed runs")
	c.Flags().IntVar(&warmup, "warmup", 1, "untimed warm-up runs")
	c.Flags().Uint64Var(&seed, "seed", 0, "seed of the random token ids")
	c.Flags().StringVar(&output, "output", "logits", "what each pass ends with: logits (all of them, as torch_bench.py) or loss (streamed)")
	rootCmd.AddCommand(c)
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
func round4(x float64) float64 { return float64(int64(x*1e4+0.5)) / 1e4 }
