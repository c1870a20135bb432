package errs

import (
	"errors"
	"fmt"
	"testing"
)

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprint("code ", e.code) }

type valueError struct{ s string }

func (e valueError) Error() string { return e.s }

// TestAsLikeErrorsAs compares As with errors.As over chains built with
// %w, errors.Join and nesting, with the target at every depth and absent.
func TestAsLikeErrorsAs(t *testing.T) {
	c1, c2 := &codeError{1}, &codeError{2}
	base := errors.New("base")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"nil", nil},
		{"plain", base},
		{"self", c1},
		{"wrapped", fmt.Errorf("a: %w", c1)},
		{"deep", fmt.Errorf("a: %w", fmt.Errorf("b: %w", fmt.Errorf("c: %w", c2)))},
		{"joined first", errors.Join(c1, c2)},
		{"joined second", errors.Join(base, fmt.Errorf("x: %w", c2))},
		{"joined none", errors.Join(base, errors.New("other"))},
		{"multi %w", fmt.Errorf("%w and %w", base, c2)},
		{"value type", fmt.Errorf("v: %w", valueError{"v"})},
		{"nested joins", errors.Join(errors.Join(base), errors.Join(base, c1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want *codeError
			wantOK := errors.As(tc.err, &want)
			got, ok := As[*codeError](tc.err)
			if ok != wantOK || got != want {
				t.Errorf("As = %v, %v; errors.As = %v, %v", got, ok, want, wantOK)
			}
			var wantV valueError
			wantVOK := errors.As(tc.err, &wantV)
			gotV, okV := As[valueError](tc.err)
			if okV != wantVOK || gotV != wantV {
				t.Errorf("As[valueError] = %v, %v; errors.As = %v, %v", gotV, okV, wantV, wantVOK)
			}
		})
	}
}

type isError struct{ target error }

func (e isError) Error() string        { return "is" }
func (e isError) Is(target error) bool { return Same(target, e.target) }
func (e isError) Unwrap() error        { return nil }

// TestIsLikeErrorsIs compares Is with errors.Is for sentinels made by New
// over the same kinds of trees, and Is methods.
func TestIsLikeErrorsIs(t *testing.T) {
	a, b, c := New("a"), New("b"), New("c")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"nil", nil},
		{"self", a},
		{"other", b},
		{"wrapped", fmt.Errorf("x: %w", a)},
		{"deep", fmt.Errorf("x: %w", fmt.Errorf("y: %w", fmt.Errorf("z: %w", a)))},
		{"joined", errors.Join(b, fmt.Errorf("x: %w", a))},
		{"joined without", errors.Join(b, c)},
		{"multi %w", fmt.Errorf("%w, %w", c, a)},
		{"Is method", isError{a}},
		{"Is method other", isError{b}},
		{"Is method wrapped", fmt.Errorf("x: %w", isError{a})},
		{"not a sentinel", errors.New("a")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []error{a, b, c} {
				if got, want := Is(tc.err, target), errors.Is(tc.err, target); got != want {
					t.Errorf("Is(%v, %v) = %v, errors.Is %v", tc.err, target, got, want)
				}
			}
		})
	}
	if Is(a, errors.New("a")) || Is(a, nil) {
		t.Error("Is matched a target that is not a sentinel")
	}
	if !Same(a, a) || Same(a, b) || Same(errors.New("a"), a) || Same(nil, nil) {
		t.Error("Same is not identity of sentinels")
	}
	if a.Error() != "a" {
		t.Errorf("Error() = %q", a.Error())
	}
}
