#!/usr/bin/perl

# Story: /canary_status speaks JSON to scripts, Prometheus text to a
# scraper and HTML to a browser; ?split= narrows it; a bad query gets a
# 400 with a one-line reason; promtool accepts the Prometheus output
# without a warning.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempfile);
use JSON::PP;
use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');

$t->write_conf(<<"EOF");
    canary_zone canary 4m;

    canary_split api { stable stable_up; canary canary_up; weight 12.5;
                       cohort \$http_x_cohort; cohort_weight beta 25;
                       guard error_rate=50 min_requests=100000 window=60s; }
    canary_split "web\\"x" { stable stable_up; canary canary_up; weight 0; }

    ${\ $t->origins }

    server {
        listen 127.0.0.1:$port;

        location /api { canary api; proxy_pass http://\$canary_upstream; }
        location /web { canary "web\\"x"; proxy_pass http://\$canary_upstream; }
        location = /canary_status { canary_status; }
    }
EOF
$t->start;

$t->request_many($port, [ map { { path => $_ % 2 ? '/api' : '/web',
                                   headers => ['X-Tenant-Id' => "t$_"] } }
                          1 .. 200 ]);

my $r = $t->get($port, '/canary_status');
is($r->{status}, 200, 'JSON by default');
is($r->{headers}{'content-type'}, 'application/json', 'as application/json');
is($r->{headers}{'cache-control'}, 'no-store', 'never cached');

my $j = decode_json($r->{content});
is_deeply([ sort keys %{$j->{splits}} ], [ 'api', 'web"x' ],
          'both splits, a quote in a name escaped');
is($j->{splits}{api}{weight}, 12.5, 'weight is a number in percent');
is($j->{splits}{api}{cohorts}{beta}, 25, 'cohort weights');
ok(JSON::PP::is_bool($j->{splits}{api}{enabled}), 'enabled is a boolean');
is($j->{redis}, undef, 'redis is null without canary_redis');

my $v = $j->{splits}{api}{variants}{canary};
for my $k (qw(upstream requests responses upstream_errors latency
              upstream_latency window))
{
    ok(exists $v->{$k}, "variant has $k");
}
is(scalar @{$v->{latency}{le_ms}}, 322, '322 bucket bounds');
is(scalar @{$v->{latency}{counts}}, 322, '322 bucket counts');
is($v->{latency}{le_ms}[-1], undef, 'the last bound is null: +Inf');
is($v->{latency}{le_ms}[0], 0.064, 'the first bound is 0.064 ms');

# the guard's own window now, beside its state: its length, its numbers
my $g = $j->{splits}{api}{guard};
is($g->{limits}{window_seconds}, 60, "api's guard window: 60 s");
ok($g->{current}{seconds} <= 60, 'guard.current.seconds is within it');
is($g->{current}{canary}{requests} + $g->{current}{stable}{requests},
   $j->{splits}{api}{variants}{canary}{requests}
   + $j->{splits}{api}{variants}{stable}{requests},
   "guard.current counts the split's 100 requests");
is($g->{current}{stable}{requests}
   + $g->{current}{canary}{requests}, 100, 'all 100 of them');
for my $side (qw(stable canary)) {
    is_deeply([ sort keys %{$g->{current}{$side}} ],
              [ qw(error_rate errors p99_ms requests upstream_errors) ],
              "guard.current.$side: the fields of guard.windows");
}
is($g->{windows}, undef, 'windows: null, it did not trip');
ok(exists $j->{splits}{'web"x'}{guard}{current}
   && !defined $j->{splits}{'web"x'}{guard}{current},
   'guard.current is null without a guard');

$r = $t->get($port, '/canary_status?split=api');
is_deeply([ keys %{decode_json($r->{content})->{splits}} ], ['api'],
          '?split= narrows to one split');

$r = $t->get($port, '/canary_status?window=5');
is(decode_json($r->{content})->{splits}{api}{variants}{stable}{window}
   {seconds} <= 5 ? 1 : 0, 1, '?window=5 is at most 5 seconds');

for my $bad ('format=xml', 'split=nope', 'window=0', 'window=61',
             'window=abc', 'format=' . ('x' x 5000),
             'format=html&split=nope', 'format=html&window=0',
             'format=prometheus&split=nope')
{
    $r = $t->get($port, "/canary_status?$bad");
    is($r->{status}, 400, "?" . substr($bad, 0, 20) . ": 400");
    like($r->{content}, qr/^[^\n]{1,200}\n\z/, 'with a one-line reason');
}

# a browser asks for text/html: the same checks
$r = $t->get($port, '/canary_status?split=nope',
             { Accept => 'text/html,application/xhtml+xml,*/*;q=0.8' });
is($r->{status}, 400, 'the dashboard of an unknown split: 400');

$r = $t->get($port, '/canary_status?format=html&split=api');
is($r->{status}, 200, 'the dashboard of a split that exists: 200');

$r = $t->request('POST', $port, '/canary_status', {}, content => 'x');
is($r->{status}, 405, 'POST is not allowed');

$r = $t->request('HEAD', $port, '/canary_status');
is($r->{status}, 200, 'HEAD answers');
ok(!length($r->{content} // ''), 'without a body');

# Prometheus, by ?format= and by a scraper's Accept header
$r = $t->get($port, '/canary_status?format=prometheus');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4},
     'Prometheus text format 0.0.4');
my $prom = $r->{content};

$r = $t->get($port, '/canary_status', { Accept =>
    'application/openmetrics-text;version=1.0.0;q=0.75,'
    . 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1' });
like($r->{headers}{'content-type'}, qr{^text/plain},
     "a Prometheus scraper's Accept gets the text format");

like($prom, qr/^canary_weight_percent\{split="api"\} 12\.5$/m,
     'canary_weight_percent');
like($prom, qr/^canary_requests_total\{split="web\\"x",variant="stable",code="2xx"\} \d+$/m,
     'label values escaped');
for my $m (qw(canary_upstream_errors_total canary_request_duration_seconds
              canary_upstream_response_seconds canary_enabled
              canary_generation canary_guard_tripped canary_zone_size_bytes
              canary_zone_used_bytes canary_split_info
              canary_pinned_tenants))
{
    like($prom, qr/^# TYPE $m /m, "$m has HELP and TYPE");
}

like($prom, qr/^canary_split_info\{split="api",state=""\} 1$/m,
     'canary_split_info without Redis: state ""');
like($prom, qr/^canary_pinned_tenants\{split="web\\"x",variant="canary"\} 0$/m,
     'canary_pinned_tenants, the split name escaped');

SKIP: {
    skip 'promtool is not installed', 2 unless -x '/usr/bin/promtool';

    my ($fh, $file) = tempfile(DIR => $t->prefix);
    print $fh $prom;
    close $fh;

    my $out = `/usr/bin/promtool check metrics < $file 2>&1`;
    is($?, 0, 'promtool check metrics passes');
    is($out, '', 'without a warning') or diag($out);
}

$t->stop;

done_testing;
