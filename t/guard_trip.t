#!/usr/bin/perl

# Story: the canary starts failing every request under steady traffic and
# the in-proxy guard pulls it within a second.
#
# Split "app" sends half of 300 tenants to canary, with
#     guard error_rate=10 min_requests=20 window=10s;
# Forked clients keep sending requests (nginx runs 2 workers).  After two
# quiet seconds the canary origin starts answering 500 (a file switches
# it at runtime).  From the clients' own clock: the first 500 is seen,
# and no response comes from the canary more than one second after it;
# from then on every request goes to stable with $canary_reason "guard".
# The status page and the Prometheus text show the trip and its reason,
# and the error log has exactly one line for it.
#
# Two more splits trip on the other limits: "slow", whose canary answers
# after 300ms (t/lib/slow_origin.pl), on latency_p99=100ms, and "dead",
# whose canary port is closed, on upstream_errors=5.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use JSON::PP;
use POSIX qw(_exit);
use Storable qw(nstore retrieve);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $p_stable = $t->port('stable');
my $p_canary = $t->port('canary');
my $p_slow = $t->port('slow');
my $p_dead = $t->port('dead');
my $fault = $t->prefix . '/fault';

$t->spawn($^X, "$FindBin::Bin/lib/slow_origin.pl", $p_slow, 300,
          "canary slow_canary\n");

# the dead canary's port is closed; its connect errors are expected
$t->allow_log(qr/connect\(\) failed \(111: Connection refused\)/);

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;

    canary_split app {
        stable app_stable;
        canary app_canary;
        weight 50;
        guard  error_rate=10 min_requests=20 window=10s;
    }

    canary_split slow {
        stable app_stable;
        canary slow_canary;
        weight 50;
        guard  latency_p99=100ms min_requests=10 window=10s;
    }

    canary_split dead {
        stable app_stable;
        canary dead_canary;
        weight 50;
        guard  upstream_errors=5 min_requests=5;
    }

    upstream app_stable  { server 127.0.0.1:$p_stable; }
    upstream app_canary  { server 127.0.0.1:$p_canary; }
    upstream slow_canary { server 127.0.0.1:$p_slow; }
    upstream dead_canary { server 127.0.0.1:$p_dead; }

    server {
        listen 127.0.0.1:$p_stable;

        location / {
            return 200 "stable app_stable\\n";
        }
    }

    server {
        listen 127.0.0.1:$p_canary;

        location / {
            if (-f $fault) {
                return 500;
            }

            return 200 "canary app_canary\\n";
        }
    }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /slow/ {
            canary slow;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /dead/ {
            canary dead;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF

# ---- helpers -------------------------------------------------------------

sub status {
    my $r = $t->get($port, '/canary_status');

    return decode_json($r->{content})->{splits};
}

sub prometheus {
    return $t->get($port, '/canary_status?format=prometheus')->{content};
}

sub wait_for {
    my ($seconds, $cond) = @_;

    my $t0 = time;

    until ($cond->()) {
        return undef if time - $t0 > $seconds;
        sleep 0.02;
    }

    return time - $t0;
}

# forked clients (keep-alive) until the stop file appears; each response
# kept as [time sent, time received, status, variant, reason, body side]
sub start_load {
    my ($clients, $path) = @_;

    my $stop = $t->prefix . "/tmp/stop-load";
    unlink $stop;

    my @kids;
    my $parent = $$;

    for my $c (1 .. $clients) {
        my $file = $t->prefix . "/tmp/load-$c";
        my $pid = fork // die "fork: $!";

        if ($pid == 0) {
            my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 5);
            my ($i, @rec) = (0);

            while (!-e $stop && kill(0, $parent) && @rec < 200000) {
                my $sent = time;
                my $r = $http->get("http://127.0.0.1:$port$path",
                    { headers => { 'X-Tenant-Id' => "t" . $i++ % 300 } });
                my $h = $r->{headers};

                push @rec, [ $sent, time, $r->{status},
                             $h->{'x-canary-variant'} // '',
                             $h->{'x-canary-reason'} // '',
                             ($r->{content} // '') =~ /^(\w+) / ? $1 : '' ];
            }

            nstore(\@rec, $file);
            _exit(0);
        }

        push @kids, [$pid, $file];
    }

    return { stop => $stop, kids => \@kids };
}

sub stop_load {
    my ($load) = @_;

    open my $fh, '>', $load->{stop} or die "$load->{stop}: $!";
    close $fh;

    my @rec;

    for my $k (@{$load->{kids}}) {
        waitpid $k->[0], 0;
        push @rec, @{retrieve($k->[1])};
    }

    return [ sort { $a->[1] <=> $b->[1] } @rec ];
}

sub count_lines {
    my ($re) = @_;

    return scalar grep { $_ =~ $re } split /\n/, $t->error_log;
}

# ---- steady traffic, then the canary fails -------------------------------

$t->start;

my $st = status();
is $st->{app}{guard}{configured}, JSON::PP::true, 'the guard is configured';
is $st->{app}{guard}{tripped}, JSON::PP::false, 'and armed';
like prometheus(), qr/^canary_guard_tripped\{split="app"\} 0$/m,
    'Prometheus: canary_guard_tripped 0';

my $load = start_load(2, '/');
sleep 2;

my $t_fault = time;
open my $fh, '>', $fault or die "$fault: $!";
close $fh;

my $tripped = wait_for(5, sub { status()->{app}{guard}{tripped} });
ok defined $tripped, 'the guard trips';

# keep the traffic going after the trip
sleep 1.5;
my $rec = stop_load($load);

my @before = grep { $_->[1] < $t_fault } @$rec;
my @fails = grep { $_->[2] == 500 } @$rec;
my $first_fail = @fails ? $fails[0][1] : undef;
my @canary = grep { $_->[3] eq 'canary' } @$rec;
my $last_canary = $canary[-1][1];

cmp_ok scalar(@$rec), '>', 400, scalar(@$rec) . ' requests in all';
cmp_ok scalar(grep { $_->[3] eq 'canary' && $_->[2] == 200 } @before),
    '>', 50, 'the canary served before the fault';
is scalar(grep { $_->[2] != 200 } @before), 0,
    'nothing failed before the fault';
ok defined $first_fail, 'the clients saw the canary fail';

my $exposure = $last_canary - $first_fail;
cmp_ok $exposure, '<', 1.0,
    'no response from the canary more than 1s after the first failure';
diag sprintf "guard: first failure %.0fms after the fault switched on, "
             . "last canary response %.0fms after the first failure, "
             . "%d failed requests in all (status said tripped %.0fms after "
             . "the switch)", ($first_fail - $t_fault) * 1000,
             $exposure * 1000, scalar(@fails), ($tripped // 99) * 1000;

my @after = grep { $_->[0] > $last_canary } @$rec;
cmp_ok scalar(@after), '>', 100, scalar(@after) . ' requests after the trip';
is scalar(grep { $_->[2] != 200 || $_->[5] ne 'stable'
                 || $_->[3] ne 'stable' || $_->[4] ne 'guard' } @after), 0,
    'after the trip every request went to stable with reason guard';
is scalar(grep { $_->[0] > $first_fail && $_->[3] eq 'canary'
                 && $_->[2] == 200 } @$rec), 0,
    'no canary success for a request sent after the first failure';

# the trip, as the operator sees it
$st = status()->{app};
is $st->{guard}{tripped}, JSON::PP::true, 'status: guard tripped';
cmp_ok $st->{guard}{since}, '>=', int($t_fault), 'status: since the fault';
like $st->{guard}{reason}, qr/^error_rate \d+(\.\d+)?% > 10\.00%/,
    "status: reason \"$st->{guard}{reason}\"";
like prometheus(), qr/^canary_guard_tripped\{split="app"\} 1$/m,
    'Prometheus: canary_guard_tripped{split="app"} 1';

is count_lines(qr/\[error\].*canary guard tripped for split "app": error_rate/),
    1, 'one error-log line for the trip';

# the variables say why
my $d = $t->route($port, '/', { 'X-Tenant-Id' => 't1' });
is $d->{reason}, 'guard', '$canary_reason is guard';
is $d->{weight}, 0, '$canary_weight is 0';

# it stays tripped when the canary recovers: only an operator re-arms it
unlink $fault;
sleep 1.5;
is status()->{app}{guard}{tripped}, JSON::PP::true,
    'still tripped after the fault is gone';
is count_lines(qr/canary guard tripped for split "app"/), 1,
    'still one line in the log';

# ---- latency -------------------------------------------------------------

my $reqs = [ map { { path => "/slow/$_", headers =>
                     { 'X-Tenant-Id' => "s$_" } } } 1 .. 48 ];
my $res = $t->route_many($port, $reqs, clients => 8, batch => 1);

is scalar(grep { $_->{status} != 200 } @$res), 0,
    'the slow canary answers every request';
cmp_ok scalar(grep { $_->{side} eq 'canary' } @$res), '>=', 10,
    'at least min_requests went to the slow canary';

ok wait_for(2, sub { status()->{slow}{guard}{tripped} }),
    'the latency guard trips';
like status()->{slow}{guard}{reason}, qr/^latency_p99 \d+(\.\d+)?ms > 100\.0ms/,
    "reason \"${\ status()->{slow}{guard}{reason} }\"";
is $t->route($port, '/slow/x', { 'X-Tenant-Id' => 's1' })->{reason},
    'guard', 'requests of "slow" go by the guard';
like prometheus(), qr/^canary_guard_tripped\{split="slow"\} 1$/m,
    'Prometheus: canary_guard_tripped{split="slow"} 1';

# ---- upstream errors -----------------------------------------------------

$reqs = [ map { { path => "/dead/$_", headers =>
                  { 'X-Tenant-Id' => "d$_" } } } 1 .. 30 ];
$res = $t->route_many($port, $reqs, clients => 1);

cmp_ok scalar(grep { $_->{status} == 502 } @$res), '>=', 5,
    'the dead canary gives 502s';

ok wait_for(2, sub { status()->{dead}{guard}{tripped} }),
    'the upstream_errors guard trips';
like status()->{dead}{guard}{reason}, qr/^upstream_errors \d+ >= 5/,
    "reason \"${\ status()->{dead}{guard}{reason} }\"";

$res = $t->route_many($port, $reqs, clients => 1);
is scalar(grep { $_->{status} != 200 || $_->{reason} ne 'guard' } @$res), 0,
    'then every request of "dead" is served by stable';

is count_lines(qr/canary guard tripped for split/), 3,
    'one log line per tripped split';
like prometheus(), qr/^canary_guard_tripped\{split="dead"\} 1$/m,
    'Prometheus: canary_guard_tripped{split="dead"} 1';

$t->stop;

done_testing;
