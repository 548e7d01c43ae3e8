#!/usr/bin/perl

# Story: for the fastest path an SRE writes the split as an upstream,
# "upstream api { canary_balancer app; }" with "proxy_pass http://api;".
# Tenants land exactly where the bucket formula and the variable form put
# them, the metrics count every request, the variables still work, and
# bad configurations fail "nginx -t".  (The groups here have one server
# each; the chosen group's own balancer over several servers, with hash,
# least_conn, keepalive and failover, is t/balancer_group_balancers.t.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

    canary_split app {
        stable stable_up; canary canary_up; weight 25; salt r1;
        override X-Canary-Opt-In true canary;
    }

    upstream api {
        canary_balancer app;
    }

    ${\ $t->origins }

    server {
        listen 127.0.0.1:$port;

        location / {
            ${\ CanaryTest::expose_vars() }
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://api;
        }

        location = /canary_status { canary_status; }
    }
EOF
$t->start;

my @tenants = map { "tenant-$_" } 1 .. 400;
my $ds = $t->route_many($port,
    [ map { { path => '/', headers => ['X-Tenant-Id' => $_] } } @tenants ]);

my $wrong = 0;
my $canary = 0;
for my $i (0 .. $#tenants) {
    my $want = CanaryTest::is_canary('r1', $tenants[$i], 25) ? 'canary'
                                                             : 'stable';
    $canary++ if $want eq 'canary';
    $wrong++ if $ds->[$i]{side} ne $want
                || $ds->[$i]{variant} ne $want
                || $ds->[$i]{bucket} != CanaryTest::bucket('r1', $tenants[$i]);
}
is($wrong, 0, 'every tenant went where the formula says, variables agree');

my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'tenant-1',
                                'X-Canary-Opt-In' => 'true' });
is($d->{side}, 'canary', 'an override header works in the upstream form');
is($d->{reason}, 'header', 'with reason header');

my $v;
for (1 .. 40) {
    $v = decode_json($t->get($port, '/canary_status')->{content})
         ->{splits}{app}{variants};
    last if $v->{stable}{requests} + $v->{canary}{requests} >= 401;
    select undef, undef, undef, 0.05;
}
is($v->{canary}{requests}, $canary + 1, 'canary requests counted');
is($v->{stable}{requests}, 400 - $canary, 'stable requests counted');
is($v->{canary}{upstream}, 'canary_up', 'the upstream names are the groups');

$t->stop;

# configurations that cannot work fail nginx -t
for my $case (
    [ 'canary_split x { stable 127.0.0.1:1; canary 127.0.0.1:2; }',
      qr/must be an upstream block/, 'a split of IP:port upstreams' ],
    [ '', qr/unknown canary_split "nosuch"/, 'an unknown split' ],
)
{
    my ($split, $re, $what) = @$case;
    my $name = $split ? 'x' : 'nosuch';

    $t->write_conf(<<"EOF");
    canary_zone canary 4m;
    $split
    upstream api { canary_balancer $name; }
    server { listen 127.0.0.1:$port; location / { proxy_pass http://api; } }
EOF
    my ($ok, $out) = $t->nginx_t;
    ok(!$ok, "$what: nginx -t fails");
    like($out, $re, "$what: and says why");
}

done_testing;
