package notify

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		url      string
		want     string
		mustLack []string
	}{
		{
			name: "whole URL",
			text: `creating sender for URLs [gotify://host/Ab12Cd34Ef56Gh7]: boom`,
			url:  "gotify://host/Ab12Cd34Ef56Gh7",
			want: `creating sender for URLs [***]: boom`,
		},
		{
			name: "derived URL keeps the host",
			text: `Post "http://127.0.0.1:8080/hook/s3cr3t?token=s3cr3t": dial tcp 127.0.0.1:8080: connect: connection refused`,
			url:  "generic+http://127.0.0.1:8080/hook/s3cr3t?token=s3cr3t",
			want: `Post "http://127.0.0.1:8080/***": dial tcp 127.0.0.1:8080: connect: connection refused`,
		},
		{
			name: "userinfo pieces anywhere",
			text: `auth failed for user alice with password hunter2`,
			url:  "smtp://alice:hunter2@mail.example.com:587/?to=a@example.com",
			want: `auth failed for user *** with password ***`,
		},
		{
			name: "token path segment and query value",
			text: `invalid token "Ab12Cd34Ef56Gh7", key=s3cr3t`,
			url:  "gotify://host/Ab12Cd34Ef56Gh7?x=s3cr3t",
			want: `invalid token "***", key=***`,
		},
		{
			name: "secret keys always, bearer token alone",
			text: `header Authorization: Bearer xyz; apikey abc`,
			url:  "generic://h/p?@Authorization=Bearer%20xyz&apikey=abc",
			want: `header Authorization: ***; apikey ***`,
		},
		{
			name: "words are not tokens",
			text: `failed to send notification to generic webhook`,
			url:  "generic+https://example.com/webhook/notification",
			want: `failed to send notification to generic webhook`,
		},
		{
			name:     "unparsable URL",
			text:     `parse "generic+http://%zz/s3cr3t": invalid URL escape "%zz"`,
			url:      "generic+http://%zz/s3cr3t",
			mustLack: []string{"s3cr3t"},
		},
		{
			name: "nothing to do",
			text: "timed out",
			url:  "ntfy://ntfy.sh/topic",
			want: "timed out",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.text, tt.url)
			if tt.want != "" && got != tt.want {
				t.Errorf("Redact =\n%s\nwant\n%s", got, tt.want)
			}
			for _, s := range append(tt.mustLack, tt.url) {
				if strings.Contains(got, s) {
					t.Errorf("Redact = %q still holds %q", got, s)
				}
			}
		})
	}
}
