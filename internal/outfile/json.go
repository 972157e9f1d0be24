package outfile

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
)

// NullNaN returns v as plain JSON values (maps, slices, numbers, strings)
// with every NaN or infinite float replaced by nil (JSON null), and how
// many were replaced. JSON has no NaN: encoding/json refuses the whole
// value, so commands pass results through NullNaN (and warn) instead of
// failing the write. Struct fields follow their json tags (names, "-",
// omitempty, embedded structs); types with their own MarshalJSON are kept
// as they are.
func NullNaN(v any) (any, int) {
	n := 0
	out := nullNaN(reflect.ValueOf(v), &n)
	return out, n
}

var marshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()

func nullNaN(v reflect.Value, n *int) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type().Implements(marshalerType) && v.Kind() != reflect.Interface {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Map || v.Kind() == reflect.Slice) && v.IsNil() {
			return nil
		}
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return nullNaN(v.Elem(), n)
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			*n++
			return nil
		}
		return f
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Interface() // []byte: base64, as encoding/json does
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = nullNaN(v.Index(i), n)
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			var key string
			if k.Kind() == reflect.String {
				key = k.String()
			} else {
				b, _ := json.Marshal(k.Interface())
				key = strings.Trim(string(b), `"`)
			}
			out[key] = nullNaN(it.Value(), n)
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		structFields(v, out, n)
		return out
	}
	return v.Interface()
}

// structFields adds v's exported fields to out under their JSON names.
func structFields(v reflect.Value, out map[string]any, n *int) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv, ft = fv.Elem(), ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !ft.Implements(marshalerType) {
				structFields(fv, out, n)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.Contains(","+opts+",", ",omitempty,") && fv.IsZero() {
			if k := fv.Kind(); k != reflect.Struct && k != reflect.Array {
				continue
			}
		}
		out[name] = nullNaN(fv, n)
	}
}
