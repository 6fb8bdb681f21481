package translate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
)

// recordingDialer remembers the scheme it was asked to dial.
type recordingDialer struct {
	name string
	got  *string
}

func (d recordingDialer) Dial(_ context.Context, up policy.Upstream, _ translate.Password) (translate.Upstream, error) {
	*d.got = d.name + ":" + up.Scheme
	return nil, nil
}

func TestSchemeDialer(t *testing.T) {
	var got string
	d := translate.SchemeDialer{SFTP: recordingDialer{"sftp", &got}, FTPS: recordingDialer{"ftps", &got}}
	tests := []struct {
		scheme, want string
	}{
		{"sftp", "sftp:sftp"},
		{"ftps", "ftps:ftps"},
		{"ftpes", "ftps:ftpes"},
		{"ftp", ""},
		{"SFTP", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got = ""
		_, err := d.Dial(context.Background(), policy.Upstream{Scheme: tc.scheme}, "")
		if tc.want == "" {
			if !errors.Is(err, translate.ErrUnsupported) || got != "" {
				t.Errorf("Dial(scheme %q) = %v, dialled %q; want ErrUnsupported and no dial", tc.scheme, err, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Dial(scheme %q) = %v, dialled %q; want %q", tc.scheme, err, got, tc.want)
		}
	}

	// A missing dialer refuses its schemes.
	_, err := translate.SchemeDialer{SFTP: recordingDialer{"sftp", &got}}.Dial(context.Background(), policy.Upstream{Scheme: "ftpes"}, "")
	if !errors.Is(err, translate.ErrUnsupported) {
		t.Errorf("Dial(ftpes) without an FTPS dialer: %v; want ErrUnsupported", err)
	}
}
