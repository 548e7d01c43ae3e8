#!/usr/bin/perl

# Story: a pattern override whose regex PCRE refuses never reaches
# traffic.  "nginx -t" fails, and the message names the directive, the
# header, the regex as written, the split, PCRE's own reason and the line;
# the good forms (~, ~*, from=, "\~" for an exact value starting with
# "~", a regex that starts with "~") pass.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new(name => 'nginx -t');
my $port = $t->port('http');

sub conf {
    my ($rules) = @_;

    return <<"EOF";
    canary_zone canary 4m;

    upstream stable_up { server 127.0.0.1:1; }
    upstream canary_up { server 127.0.0.1:2; }

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 5;
$rules
    }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
            proxy_pass http://\$canary_upstream;
        }
    }
EOF
}

# refused with a message matching every pattern, on the line holding "at"
sub refused {
    my ($name, $rules, $at, @re) = @_;

    my $text = $t->write_conf(conf($rules));
    my ($ok, $out) = $t->nginx_t;

    my @missing = grep { $out !~ $_ } @re;
    my @lines = split /\n/, $text;
    my ($n) = reverse grep { index($lines[$_ - 1], $at) >= 0 } 1 .. @lines;

    push @missing, "the line number of '$at'"
        unless defined $n && $out =~ /nginx\.conf:$n\b/;

    ok(!$ok && !@missing && $out =~ /test failed/,
       "$name: nginx -t refuses it, naming what is wrong")
        or diag("exit ok: " . ($ok ? 1 : 0) . "\nmissing: "
                . join(', ', @missing) . "\noutput:\n$out");
}

{
    $t->write_conf(conf(<<'EOF'));
        override X-Summit-Employee ~*@example\.com$ canary from=10.0.0.0/8;
        override X-User  ~^beta-[0-9]+$ canary;
        override X-Team  ~^ops stable from=127.0.0.1 from=10.0.0.0/8;
        override X-Tilde \~literal canary;
        override X-Tilde ~^~x canary;
        override X-Quote "~^a b$" canary;
        override X-Canary never stable;
EOF
    my ($ok, $out) = $t->nginx_t;
    ok($ok, 'pattern overrides beside exact ones pass nginx -t') or diag($out);
}

# as written in nginx.conf, as nginx reads it (a regex with "{" or ";"
# or a space is quoted, as in nginx's own directives), PCRE's reason
my @bad = (
    [ '~(unclosed', '~(unclosed', qr/missing closing parenthesis/ ],
    [ '~*[a-', '~*[a-', qr/missing terminating \] for character class/ ],
    [ '"~a{3,2}"', '~a{3,2}', qr/numbers out of order in \{\} quantifier/ ],
    [ '~(?<n>a)(?<n>b)', '~(?<n>a)(?<n>b)',
      qr/two named subpatterns have the same name/ ],
    [ '"~a\\\\"', '~a\\', qr/\\ at end of pattern/ ],
    [ '~*+x', '~*+x', qr/quantifier does not follow a repeatable item/ ],
);

for my $b (@bad) {
    my ($written, $re, $why) = @$b;

    refused("override regex $written",
            "        override X-Bad $written canary;", "X-Bad",
            qr/\[emerg\]/,
            qr/invalid "override" regex "\Q$re\E" for header "X-Bad" in canary_split "app": pcre2_compile\(\) failed: /,
            $why,
            qr/in \S+nginx\.conf:\d+/);
}

refused('an empty regex "~"',
        "        override X-Bad ~ canary;", "X-Bad",
        qr/empty "override" regex "~" for header "X-Bad" in canary_split "app" \("~\^" matches any value\)/);

refused('an empty regex "~*"',
        "        override X-Bad ~* canary;", "X-Bad",
        qr/empty "override" regex "~\*" for header "X-Bad" in canary_split "app"/);

refused('a pattern with a bad from=',
        "        override X-Bad ~^a canary from=10.0.0.300/8;", "X-Bad",
        qr/invalid "override" address "from=10\.0\.0\.300\/8" in canary_split "app"/);

refused('a pattern to a variant that does not exist',
        "        override X-Bad ~^a maybe;", "X-Bad",
        qr/invalid "override" variant "maybe" in canary_split "app"/);

done_testing;
