#!/usr/bin/perl

# Story: every rollout decision is taken on these counters, so they must
# be exact.  A canary origin that answers 500 to every 10th request shows
# exactly that many 5xx on the canary; an origin that is down shows
# upstream errors, not origin 5xx; a request is counted once, in one
# class; stable stays clean.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $st = $t->port('stable');
my $cn = $t->port('canary');
my $down = $t->port('down');    # nothing listens here

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

    upstream st { server 127.0.0.1:$st; }
    upstream cn { server 127.0.0.1:$cn; }
    upstream dn { server 127.0.0.1:$down max_fails=0; }

    canary_split app  { stable st; canary cn; weight 100; }
    canary_split gone { stable st; canary dn; weight 100; }
    canary_split half { stable st; canary cn; weight 50; }
    canary_split epage { stable st; canary dn; weight 100; }
    canary_split eover { stable st; canary dn; weight 100; }
    canary_split named { stable st; canary cn; weight 100; }

    # every 10th request (by a request counter in the URL) is a 500
    server {
        listen 127.0.0.1:$cn;
        location / {
            if (\$arg_n ~ "0\$") { return 500 "canary failed\\n"; }
            return 200 "canary\\n";
        }
    }

    server {
        listen 127.0.0.1:$st;
        location / { return 200 "stable\\n"; }
    }

    server {
        listen 127.0.0.1:$port;

        location /app  { canary app;  proxy_pass http://\$canary_upstream; }
        location /gone { canary gone; proxy_pass http://\$canary_upstream; }
        location /half { canary half; proxy_pass http://\$canary_upstream; }

        # nginx clears module contexts on an internal redirect: the
        # decision must survive error_page and try_files all the same
        location /epage {
            canary epage;
            error_page 502 /50x.html;
            proxy_pass http://\$canary_upstream;
        }
        location /eover {
            canary eover;
            error_page 502 =200 /50x.html;
            proxy_pass http://\$canary_upstream;
        }
        location = /50x.html {
            add_header X-Variant \$canary_variant always;
            return 502 "sorry\n";
        }
        location /named {
            canary named;
            try_files /nonexistent \@named;
        }
        location \@named { proxy_pass http://\$canary_upstream; }
        location = /canary_status { canary_status; }
    }
EOF
$t->start;

sub status {
    my $r = $t->get($port, '/canary_status');
    return $r->{status} == 200 ? decode_json($r->{content}) : {};
}

# the log phase runs right after the response: wait until it did
sub settled {
    my ($split, $want) = @_;
    my $v;

    for (1 .. 40) {
        $v = status()->{splits}{$split}{variants};
        last if $v->{stable}{requests} + $v->{canary}{requests} >= $want;
        select undef, undef, undef, 0.05;
    }

    return $v;
}

my @reqs = map { { path => "/app?n=$_", headers => ['X-Tenant-Id' => "t$_"] } }
           1 .. 1000;
my $res = $t->request_many($port, \@reqs, clients => 2);

my $n500 = grep { $_->{status} == 500 } @$res;
is($n500, 100, 'the origin answered 500 to exactly 100 of 1000');

my $s = settled('app', 1000);
my $c = $s->{canary};
is($c->{requests}, 1000, 'canary counted 1000 requests');
is($c->{responses}{'5xx'}, 100, 'canary counted exactly 100 origin 5xx');
is($c->{responses}{'2xx'}, 900, 'canary counted exactly 900 2xx');
is($c->{upstream_errors}, 0, 'an origin 500 is not an upstream error');
is($c->{latency}{count}, 1000, 'one latency sample per request');
is($c->{upstream_latency}{count}, 1000, 'one upstream time per request');
is($c->{window}{requests}, 1000, 'the 60s window holds all of them');
is($c->{window}{'5xx'}, 100, 'the window holds the 100 5xx');
is($s->{stable}{requests}, 0, 'stable got nothing at weight 100');

# an origin that is down: upstream errors, not origin 5xx
$res = $t->request_many($port,
    [ map { { path => "/gone", headers => ['X-Tenant-Id' => "t$_"] } }
      1 .. 50 ], clients => 1);
is(scalar(grep { $_->{status} == 502 } @$res), 50,
   'clients got 502 from nginx for the down origin');

my $g = settled('gone', 50)->{canary};
is($g->{requests}, 50, 'down origin: 50 requests');
is($g->{upstream_errors}, 50, 'down origin: 50 upstream errors');
is($g->{responses}{'5xx'}, 0, 'down origin: no origin 5xx');
is($g->{window}{upstream_errors}, 50, 'down origin: 50 in the window');

# an error_page after a failed canary: still counted, as an upstream error
$res = $t->request_many($port,
    [ map { { path => "/epage", headers => ['X-Tenant-Id' => "t$_"] } }
      1 .. 20 ], clients => 1);
is(scalar(grep { $_->{status} == 502 } @$res), 20,
   'error_page 502: clients got the error page');

my $e = settled('epage', 20)->{canary};
is($e->{requests}, 20, 'error_page 502: 20 canary requests counted');
is($e->{upstream_errors}, 20, 'error_page 502: 20 upstream errors');
is($e->{window}{upstream_errors}, 20, 'error_page 502: 20 in the window');

my $r = $t->get($port, '/epage', { 'X-Tenant-Id' => 'tv' });
is($r->{headers}{'x-variant'}, 'canary',
   'the error page sees the decision made before the redirect');

$res = $t->request_many($port,
    [ map { { path => "/eover", headers => ['X-Tenant-Id' => "t$_"] } }
      1 .. 20 ], clients => 1);
is(scalar(grep { $_->{status} == 200 } @$res), 20,
   'error_page 502 =200: clients got 200');

$e = settled('eover', 20)->{canary};
is($e->{upstream_errors}, 20,
   'error_page 502 =200: the 200 hides no upstream error');
is($e->{responses}{'2xx'}, 0, 'and none is counted as a 2xx');

$res = $t->request_many($port,
    [ map { { path => "/named?n=$_", headers => ['X-Tenant-Id' => "t$_"] } }
      1 .. 20 ], clients => 1);
$e = settled('named', 20)->{canary};
is($e->{requests}, 20, 'try_files to a named location: 20 counted');
is($e->{responses}{'5xx'}, 2, 'with the origin\'s 2 500s');

# a split at 50: the sides add up, and each side's classes add up
$res = $t->request_many($port,
    [ map { { path => "/half", headers => ['X-Tenant-Id' => "u$_"] } }
      1 .. 2000 ], clients => 2);

my $h = settled('half', 2000);
is($h->{stable}{requests} + $h->{canary}{requests}, 2000,
   'weight 50: stable and canary add up to the requests sent');

my $expect_canary = grep { CanaryTest::is_canary('', "u$_", 50) } 1 .. 2000;
is($h->{canary}{requests}, $expect_canary,
   "weight 50: canary counted exactly the $expect_canary tenants the "
   . "formula puts there");

for my $v (qw(stable canary)) {
    my $sum = 0;
    $sum += $h->{$v}{responses}{$_} for qw(1xx 2xx 3xx 4xx 5xx);
    is($sum + $h->{$v}{upstream_errors}, $h->{$v}{requests},
       "$v: response classes and upstream errors add up to requests");
}

$t->allow_log(qr/connect\(\) failed/);
$t->stop;

done_testing;
