package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/cuda/driver"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// openModel is forward.Open with its errors classified: a missing, corrupt or
// inconsistent config.json or checkpoint is bad input (exit 2); a device
// failure while uploading the weights (a CUDA driver error, e.g. out of
// memory) is not.
func openModel(be backend.Backend, dir string) (*forward.Model, error) {
	m, err := forward.Open(be, dir)
	if err != nil {
		var de *driver.Error
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, usageError{err}
	}
	return m, nil
}

// usageArgs makes every command's argument check (cobra.NoArgs and the
// like) a usage error, exit status 2, as flag errors already are. A group
// below the root (tunedlens) runs its help when called alone and refuses an
// unknown subcommand, instead of printing help and exiting 0.
func usageArgs(c *cobra.Command) {
	if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
		if c.Args == nil {
			c.Args = cobra.NoArgs
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if a := c.Args; a != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := a(cmd, args); err != nil {
				var ue usageError
				if errors.As(err, &ue) {
					return err
				}
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// plainJSONErrors rewrites encoding/json's type errors, wherever they are
// wrapped, in JSON's words: `field "num_layers": got a string, want a whole
// number` instead of `cannot unmarshal string into Go struct field
// rawConfig.num_layers of type int`.
func plainJSONErrors(err error) string {
	msg := err.Error()
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		field := ute.Field
		if field == "" {
			field = "(top level)"
		}
		plain := fmt.Sprintf("field %q: got %s, want %s", field, jsonValueWord(ute.Value), goKindWord(ute.Type))
		msg = strings.Replace(msg, ute.Error(), plain, 1)
	}
	return msg
}

// jsonValueWord names the JSON value kind json.UnmarshalTypeError.Value
// holds ("string", "number", "number 2.5", "bool", "array", "object").
func jsonValueWord(v string) string {
	switch {
	case v == "bool":
		return "true or false"
	case v == "array" || v == "object":
		return "an " + v
	case strings.HasPrefix(v, "number"):
		return "the " + v
	}
	return "a " + v
}

func goKindWord(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return goKindWord(t.Elem())
	}
	return "another kind of value"
}

// Unwrap lets errors.As see through a usage error to its cause.
func (e usageError) Unwrap() error { return e.error }
