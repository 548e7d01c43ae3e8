#!/usr/bin/perl

# Story: the QA team flips their browser to canary with the cookie
# "canary=always", but anybody can set a cookie.  As for override
# headers, "cookie canary from=CIDR ...;" trusts the cookie only from
# those client addresses (after realip): from anywhere else it is
# ignored and the tenant hash decides.  We connect from 127.0.0.2 (in
# the QA network here, with 10.0.0.0/8) and from 127.0.0.1 (outside),
# to a split at weight 0 (the hash says stable, "always" would say
# canary) and one at weight 100 (the other way round, with "never").
# Behind a trusted balancer, the client address it gives counts, not its
# own.  A bad address fails nginx -t, naming the directive and the value.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my %port = map { $_ => $t->port($_) } qw(http lb);

my $cookie = 'cookie canary from=127.0.0.2 from=10.0.0.0/8;';

$t->write_conf(<<"EOF");
    canary_zone canary 1m;

    canary_split w0   { stable stable_up; canary canary_up; weight 0;
                        $cookie }
    canary_split w100 { stable stable_up; canary canary_up; weight 100;
                        $cookie }
    canary_split open { stable stable_up; canary canary_up; weight 0;
                        cookie canary; }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port{http};
        listen 127.0.0.2:$port{http};

        location /w0/   { canary w0;   ${\ vars() } }
        location /w100/ { canary w100; ${\ vars() } }
        location /open/ { canary open; ${\ vars() } }
    }

    # behind a balancer at 127.0.0.3 that says who the client is
    server {
        listen 127.0.0.1:$port{lb};
        listen 127.0.0.3:$port{lb};
        set_real_ip_from 127.0.0.3;
        real_ip_header X-Forwarded-For;

        location /w0/ { canary w0; ${\ vars() } }
    }
EOF
$t->start;

sub vars {
    return CanaryTest::expose_vars()
           . "            proxy_pass http://\$canary_upstream;\n";
}

my @T = ('X-Tenant-Id' => 'tenant-1');

for my $c (
    # port, path, from, cookie, extra headers, side/reason, what
    ['http', '/w0/', '127.0.0.2', 'canary=always', [], 'canary/cookie',
     'always from a trusted address: canary'],
    ['http', '/w0/', '127.0.0.1', 'canary=always', [], 'stable/hash',
     'always from an untrusted address: ignored, the hash says stable'],
    ['http', '/w100/', '127.0.0.2', 'canary=never', [], 'stable/cookie',
     'never from a trusted address: stable'],
    ['http', '/w100/', '127.0.0.1', 'canary=never', [], 'canary/hash',
     'never from an untrusted address: ignored, the hash says canary'],
    ['http', '/w0/', '127.0.0.1', 'other=1; canary=always', [],
     'stable/hash', 'among other cookies, untrusted: ignored'],
    ['http', '/open/', '127.0.0.1', 'canary=always', [], 'canary/cookie',
     'without from=, from anywhere: canary'],
    ['lb', '/w0/', '127.0.0.3', 'canary=always',
     ['X-Forwarded-For' => '10.1.2.3'], 'canary/cookie',
     'through the balancer for a client in 10/8: trusted'],
    ['lb', '/w0/', '127.0.0.3', 'canary=always',
     ['X-Forwarded-For' => '192.168.1.5'], 'stable/hash',
     'through the balancer for a client outside: ignored'],
    ['lb', '/w0/', '127.0.0.1', 'canary=always',
     ['X-Forwarded-For' => '10.1.2.3'], 'stable/hash',
     'X-Forwarded-For forged by a peer that is not the balancer: ignored'],
)
{
    my ($p, $path, $from, $value, $extra, $want, $what) = @$c;

    my $d = $t->route($port{$p}, $path,
                      { @T, 'Cookie' => $value, @$extra },
                      local_address => $from);

    is(($d->{side} // '-') . '/' . ($d->{reason} // '-'), $want, $what);
}

$t->stop;


# ---- nginx -t ----------------------------------------------------------

sub refused {
    my ($what, $line, @re) = @_;

    my $text = $t->write_conf(<<"EOF");
    canary_zone canary 1m;
    upstream stable_up { server 127.0.0.1:1; }
    upstream canary_up { server 127.0.0.1:2; }

    canary_split app {
        stable stable_up;
        canary canary_up;
        $line
    }
EOF
    my ($ok, $out) = $t->nginx_t;

    my @lines = split /\n/, $text;
    my ($n) = grep { index($lines[$_ - 1], $line) >= 0 } 1 .. @lines;

    my @missing = grep { $out !~ $_ } @re, qr/nginx\.conf:$n\b/;

    ok(!$ok && !@missing && $out =~ /\[emerg\]/,
       "$what: nginx -t refuses it, naming the directive and the value")
        or diag("missing: @missing\noutput:\n$out");
}

for my $cidr ('10.0.0.0/33', '10.0.0.300', 'nonsense', '') {
    refused("cookie from=$cidr", "cookie canary from=$cidr;",
            qr/invalid "cookie" address "from=\Q$cidr\E" in canary_split "app"/);
}

refused('cookie with an unknown parameter',
        'cookie canary trusted=10.0.0.0/8;',
        qr/invalid "cookie" parameter "trusted=10\.0\.0\.0\/8" in canary_split "app"/);

refused('cookie twice', 'cookie canary; cookie qa;',
        qr/"cookie" is duplicate in canary_split "app"/);

$t->write_conf(<<"EOF");
    canary_zone canary 1m;
    upstream stable_up { server 127.0.0.1:1; }
    upstream canary_up { server 127.0.0.1:2; }
    canary_split app {
        stable stable_up; canary canary_up;
        cookie canary from=10.0.0.0/8 from=127.0.0.1 from=::1 from=fd00::/8;
    }
EOF
my ($ok, $out) = $t->nginx_t;
ok($ok, 'cookie with IPv4 and IPv6 from= passes nginx -t') or diag($out);

done_testing;
