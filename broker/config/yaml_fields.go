package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeFields decodes a YAML mapping into the struct v key by key, so an
// error can name the key (yaml's own says only "cannot unmarshal !!str
// into int32"). prefix is the dotted path of v, "" at the top.
func decodeFields(node *yaml.Node, v reflect.Value, prefix string) error {
	if node.Kind != yaml.MappingNode {
		where := "the file"
		if prefix != "" {
			where = "config field " + strings.TrimSuffix(prefix, ".")
		}
		return fmt.Errorf("line %d: %s must be a mapping of key: value lines", node.Line, where)
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if line, twice := seen[key.Value]; twice {
			return fmt.Errorf("line %d: config key %q is set again (first at line %d); keep one", key.Line, prefix+key.Value, line)
		}
		seen[key.Value] = key.Line
		index, ok := fields[key.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown config key %q; known keys here: %s", key.Line, prefix+key.Value, strings.Join(knownKeys(v.Type()), ", "))
		}
		field := v.Field(index)
		name := prefix + key.Value
		if field.Kind() == reflect.Struct {
			if err := decodeFields(value, field, name+"."); err != nil {
				return err
			}
			continue
		}
		if err := value.Decode(field.Addr().Interface()); err != nil {
			return fmt.Errorf("line %d: config field %s = %q: must be %s", value.Line, name, value.Value, typeDescription(field.Type()))
		}
	}
	return nil
}

// yamlFields maps a struct's yaml keys to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// knownKeys lists a struct's yaml keys in field order, as files list them.
func knownKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// typeDescription says in words what a field takes.
func typeDescription(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		bits := t.Bits()
		return fmt.Sprintf("a whole number (%d-bit, at most %d)", bits, int64(1)<<(bits-1)-1)
	}
	return "a " + t.String()
}
