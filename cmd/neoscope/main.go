// Command neoscope runs mechanistic-interpretability experiments on GPT-Neo
// and GPT-2 checkpoints. Every subcommand lives in its own file and adds
// itself to the root command in init.
//
// Exit codes: 0 success, 1 a valid experiment failed (I/O, device), 2 bad
// usage or bad input (unknown commands, flags, extra arguments, token files,
// configurations, corrupt or inconsistent checkpoints and config.json).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:   "neoscope",
	Short: "Interpretability experiments on GPT-Neo and GPT-2, on CPU or GPU",
	Long: `neoscope runs mechanistic-interpretability experiments on GPT-Neo and GPT-2
checkpoints: cached forward passes, logit and tuned lens, ablations, induction
heads, IOI patching, and batched ablation sweeps over thousands of
configurations. Without --model it uses the small GPT-Neo bundled with it.`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// usageError marks errors caused by the user's input (exit code 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	rootCmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath())}
	})
	usageArgs(rootCmd)
	addForceFlags(rootCmd)
	// The root runs nothing itself: an error reported on it is an unknown
	// command (bad usage).
	if c, err := rootCmd.ExecuteC(); err != nil {
		var ue usageError
		if errors.As(err, &ue) || c == rootCmd {
			fmt.Fprintln(os.Stderr, "neoscope:", plainJSONErrors(err))
			os.Exit(2)
		}
		flushNotice() // a valid run failed: which backend it ran on matters
		fmt.Fprintln(os.Stderr, "neoscope:", plainJSONErrors(err))
		os.Exit(1)
	}
	flushNotice()
}
