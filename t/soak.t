#!/usr/bin/perl

# Story: five minutes of everything at once, and not one request lost.
#
# Runs only with CANARY_SOAK=1 (make soak sets it; .ci/run runs it);
# CANARY_SOAK_SECONDS sets the length (default 300),
# CANARY_SOAK_CONNECTIONS the concurrency
# (default 2000), CANARY_SOAK_RELOAD_EVERY the seconds between reloads
# (default 10; 0: none, the control run for the socket errors below),
# CANARY_SOAK_TIMEOUT the load's request timeout (default 3s, 10s when
# CANARY_NGINX_PRELOAD says nginx runs a sanitizer build).
#
#   - nginx with the module, 4 workers, proxying to two origins that are
#     another nginx (2 workers) logging every request it serves;
#   - real Redis: the split's weight written with canary-ctl every 3s,
#     pins added and removed every 3s (200 pinned tenants stay), and a
#     Redis restart half way (SAVE, stop, 2s down, start);
#   - t/lib/Traffic.pm, 4 processes, 2000 connections, rotating 10000
#     tenants, override headers, the cookie, pinned tenants and requests
#     without a key; 1 request in 50 says "Connection: close", so new
#     connections come all the time besides the keep-alive ones;
#   - nginx -s reload every 10s.
#
# Every response is checked by the load's check: 200, from the variant the
# module chose, for the reason the request had (override, cookie, pin),
# and a hashed decision consistent with the weight and bucket it reports.
#
# Counters: when the load has stopped and nothing is in flight,
#   M = the module's requests (status page, stable + canary, which the
#       zone keeps across reloads), per side;
#   O = the lines of the origins' access logs, per side;
#   W = the responses the load received.
# Every request the module routed was proxied and every request an
# origin served was counted by the module: per side 0 <= M - O <= the
# module's 4xx (the origins answer 200 only: a 4xx is a 499, a client
# gone before nginx reached the origin; O > M would be counts lost).
# The load stops with requests in flight, at most one per connection:
# 0 <= M - W <= connections.
# Requests resent, and read, write and "closed" errors, are requests
# nginx never read: a connection that an old worker closed at a reload
# (nginx finishes what it has read, then closes keep-alive connections:
# a request written at that moment gets EOF; the load resends it as HTTP
# clients do, or counts an error when the connection was new).  Each
# reload can do that once to each connection, so they are bounded by
# connections x reloads (measured with wrk: 7,483 read errors for 6
# reloads of 2,000 connections in 60s), and do not count as failures, as
# M == O shows that every request nginx read was answered.  Without
# reloads there is no such close: the control run
# (CANARY_SOAK_RELOAD_EVERY=0) must have none (measured: 0).  Timeouts
# (a request unanswered for 3s, on a proxy to a local origin) and
# connect errors must be 0 (measured: 0 in both runs).
#
# Reloads: each one ends with the old workers gone (the harness waits
# for it, 20s at most); at the end no worker is "shutting down".
# Prometheus text is read every second: histogram buckets must be
# cumulative up to +Inf == _count.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use Traffic;

plan skip_all => 'optional: a soak test: set CANARY_SOAK=1 (make soak does)'
    unless $ENV{CANARY_SOAK};

my $SECONDS = $ENV{CANARY_SOAK_SECONDS} || 300;
my $CONNS = $ENV{CANARY_SOAK_CONNECTIONS} || 2000;
my $RELOAD = $ENV{CANARY_SOAK_RELOAD_EVERY} // 10;     # 0: no reloads

# the load's request timeout: 3s; 10s on a sanitizer build, whose nginx
# (every malloc through ASan) saturates 2 CPUs shared with the load at 2000
# connections: requests then wait their turn for seconds, stuck or not
my $TIMEOUT = $ENV{CANARY_SOAK_TIMEOUT}
              || ($ENV{CANARY_NGINX_PRELOAD} ? 10 : 3);
my $WORKERS = 4;
my $PINS = 200;
my $CTL = "$FindBin::Bin/../scripts/canary-ctl";

# the connections over 4 processes, fewer than 1024 descriptors each
my $CLIENTS = 4;
my $PER = int($CONNS / $CLIENTS) || 1;
$CONNS = $PER * $CLIENTS;

my $t = CanaryTest->new(name => 'nginx');
my $o = CanaryTest->new(name => 'origins');

my $port = $t->port('http');
my %oport = (stable => $o->port('stable'), canary => $o->port('canary'));
my $redis = '127.0.0.1:' . $t->redis_port;
my $op = $o->prefix;


# ---- the origins: another nginx, logging each request it serves -----------

$o->write_conf(undef, raw => <<"EOF");
worker_processes 2;
master_process on;
daemon off;
error_log $op/error.log info;
pid $op/nginx.pid;
worker_rlimit_nofile 16384;

events {
    worker_connections 8192;
}

http {
    client_body_temp_path $op/tmp/client_body;
    proxy_temp_path       $op/tmp/proxy;
    fastcgi_temp_path     $op/tmp/fastcgi;
    uwsgi_temp_path       $op/tmp/uwsgi;
    scgi_temp_path        $op/tmp/scgi;

    log_format one '\$status';
    keepalive_requests 1000000;

    server {
        listen 127.0.0.1:$oport{stable} backlog=4096;
        access_log $op/stable.log one buffer=256k flush=1s;

        location / {
            add_header X-Echo-Kind \$http_x_kind always;
            return 200 "stable stable_up\\n";
        }
    }

    server {
        listen 127.0.0.1:$oport{canary} backlog=4096;
        access_log $op/canary.log one buffer=256k flush=1s;

        location / {
            add_header X-Echo-Kind \$http_x_kind always;
            return 200 "canary canary_up\\n";
        }
    }
}
EOF

mkdir "$op/tmp";
$o->start;


# ---- nginx with the module -------------------------------------------------

$t->redis_start;

my $conf = $t->write_conf(<<"EOF", workers => $WORKERS);
    canary_zone canary 8m;
    canary_redis $redis interval=500ms timeout=500ms;

    keepalive_requests 1000000;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 20;

        override X-Canary-Opt-In true  canary;
        override X-Canary        never stable;
        cookie   canary;
    }

    upstream stable_up {
        server 127.0.0.1:$oport{stable};
        keepalive 128;
    }

    upstream canary_up {
        server 127.0.0.1:$oport{canary};
        keepalive 128;
    }

    server {
        listen 127.0.0.1:$port backlog=4096;

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF

# room for 2000 clients and their upstream connections in every worker
$conf =~ s/worker_connections 1024;/worker_connections 16384;/
    or die 'no worker_connections in the configuration';
$conf =~ s/^(worker_processes)/worker_rlimit_nofile 20000;\n$1/m;
$t->write_conf(undef, raw => $conf);

$t->start;

sub ctl {
    my (@args) = @_;

    my $out = `$CTL --redis $redis @args 2>&1`;

    return ($? >> 8, $out);
}

sub status {
    my ($q) = @_;

    my $r = $t->get($port, '/canary_status' . ($q // ''));

    return $r->{status} == 200 ? $r->{content} : undef;
}

sub status_json {
    my $s = status();
    return $s ? eval { decode_json($s) } : undef;
}

sub wait_for {
    my ($seconds, $cond) = @_;

    my $t0 = time;

    until ($cond->()) {
        return undef if time - $t0 > $seconds;
        sleep 0.1;
    }

    return time - $t0;
}

my ($rc, $out) = ctl('set-weight', 'app', 20);
is($rc, 0, 'canary-ctl set-weight app 20') or diag($out);

($rc, $out) = ctl('pin', 'app', 'canary', map { "pin-$_" } 0 .. $PINS - 1);
is($rc, 0, "canary-ctl pin app canary: $PINS tenants") or diag($out);

ok(wait_for(10, sub {
        my $s = status_json();
        $s && $s->{redis}{connected} && $s->{splits}{app}{source} eq 'redis'
        && $s->{splits}{app}{pins}{canary} == $PINS }),
   "nginx synced the weight and $PINS pins from Redis");


# ---- the load --------------------------------------------------------------

# rotates tenants and request kinds; the origins echo X-Kind
sub request_headers {
    my ($c, $i) = @_;

    my $n = $i * $CLIENTS + $c;
    my $k = $n % 100;
    my $tenant = 't' . $n % 10000;
    my ($kind, @h);

    if ($k < 2) {
        ($kind, @h) = ('pin', 'X-Tenant-Id' => 'pin-' . $n % 200);
    } elsif ($k < 5) {
        ($kind, @h) = ('never', 'X-Tenant-Id' => $tenant,
                       'X-Canary' => 'never');
    } elsif ($k < 8) {
        ($kind, @h) = ('optin', 'X-Tenant-Id' => $tenant,
                       'X-Canary-Opt-In' => 'true');
    } elsif ($k < 10) {
        ($kind, @h) = ('cookie', 'X-Tenant-Id' => $tenant,
                       'Cookie' => 'theme=dark; canary=always');
    } elsif ($k < 11) {
        $kind = 'nokey';
    } else {
        ($kind, @h) = ('hash', 'X-Tenant-Id' => $tenant);
    }

    push @h, Connection => 'close' if $n % 50 == 0;

    return [ Host => 'soak', @h, 'X-Kind' => $kind ];
}

# the side and reason each kind must get (no side: the hash decides)
my %WANT = (pin    => ['canary', 'pin'],
            never  => ['stable', 'header'],
            optin  => ['canary', 'header'],
            cookie => ['canary', 'cookie'],
            nokey  => [undef,    'random'],
            hash   => [undef,    'hash']);

# every response: the names of the checks it fails, and "checked"
sub check_response {
    my ($r) = @_;

    my $h = $r->{headers};

    return ('checked', 'non200') if $r->{status} != 200;

    my ($side) = $r->{body} =~ /^([A-Za-z]+)/;
    my $variant = $h->{'x-canary-variant'} // '';
    my @bad = ('checked');

    push @bad, 'wrong_side' if ($side // '') ne $variant;

    my $w = $WANT{$h->{'x-echo-kind'} // ''} or return (@bad, 'no_kind');

    return (@bad, 'wrong_reason')
        if ($h->{'x-canary-reason'} // '') ne $w->[1]
           || (defined $w->[0] && $variant ne $w->[0]);

    if ($w->[1] eq 'hash') {
        my ($b, $pct) = ($h->{'x-canary-bucket'}, $h->{'x-canary-weight'});

        push @bad, 'wrong_hash'
            if !defined $b || !defined $pct || $b !~ /^\d+$/
               || $pct !~ /^\d+(?:\.\d+)?$/
               || ($b < int($pct * 100 + 0.5)) != ($variant eq 'canary');
    }

    return @bad;
}

my $load = Traffic->start(port => $port, clients => $CLIENTS,
                          connections => $PER, seconds => $SECONDS,
                          timeout => $TIMEOUT, headers => \&request_headers,
                          check => \&check_response);

my $t0 = time;
my (%next, @reload_secs, @reload_errors, $restarted, @weights);
my ($writes, $pin_changes, $prom_reads, $prom_bad, $status_bad) = (0) x 5;
my ($prom_first_bad, $redis_down_secs);

$next{reload} = $RELOAD ? $t0 + $RELOAD : 9e99;
$next{write} = $t0 + 3;
$next{prom} = $t0 + 5;
$next{status} = $t0 + 1;

my $weight = 20;

# cumulative buckets up to +Inf == _count, per series
sub prom_check {
    my ($text) = @_;

    my (%last, %inf, %count, $bad);

    for (split /\n/, $text) {
        if (/^(\w+)_bucket\{(.*),le="([^"]+)"\} (\d+)$/) {
            my $series = "$1\{$2}";

            if (defined $last{$series} && $4 < $last{$series}) {
                $bad //= "$series le=$3: $4 after $last{$series}";
            }

            $last{$series} = $4;
            $inf{$series} = $4 if $3 eq '+Inf';

        } elsif (/^(\w+)_count\{(.*)\} (\d+)$/) {
            $count{"$1\{$2}"} = $3;
        }
    }

    for my $s (keys %inf) {
        if (!defined $count{$s} || $count{$s} != $inf{$s}) {
            $bad //= "$s: +Inf $inf{$s}, _count " . ($count{$s} // '-');
        }
    }

    return $bad;
}

while ($load->running) {
    my $now = time;

    if ($now >= $next{reload}) {
        my $r0 = time;

        if (eval { $t->reload; 1 }) {
            push @reload_secs, time - $r0;

        } else {
            push @reload_errors, $@;
        }

        $next{reload} += $RELOAD;
    }

    if ($now >= $next{write}) {
        $weight = 1 + int rand 99;
        my ($rc, $out) = ctl('set-weight', 'app', $weight);

        if ($rc == 0) {
            $writes++;
            push @weights, $weight;
        }

        # churn: one tenant in, one out, on the stable side
        ctl('pin', 'app', 'stable', 'churn-' . ($pin_changes % 50));
        ctl('unpin', 'app', 'churn-' . (($pin_changes + 25) % 50));
        $pin_changes++;

        $next{write} += 3;
    }

    if ($now >= $next{status}) {
        $status_bad++ unless status_json();
        $next{status} += 1;
    }

    if ($now >= $next{prom}) {
        my $text = status('?format=prometheus');
        $prom_reads++;

        my $bad = $text ? prom_check($text) : 'no answer';

        if ($bad) {
            $prom_bad++;
            $prom_first_bad //= $bad;
        }

        $next{prom} += 1;
    }

    # half way: Redis restarts with its data
    if (!$restarted && $now - $t0 >= $SECONDS / 2) {
        $restarted = 1;

        $t->redis_cli('SAVE');
        $t->redis_stop;
        sleep 2;
        $t->redis_start;

        my $d0 = time;
        wait_for(10, sub {
            my $s = status_json();
            $s && $s->{redis}{connected} });
        $redis_down_secs = time - $d0 + 2;
    }

    sleep 0.05;
}

my $elapsed = time - $t0;

# nothing in flight any more: the old connections are closed by now
sleep 2;

my $res = eval { $load->wait };
ok($res, 'the load ran to the end') or diag($@);
$res ||= { status => {}, errors => {}, checks => {}, latency => {} };


# ---- figures ---------------------------------------------------------------

my %w;

$w{requests} = $res->{responses} // 0;
$w{rps} = $w{requests} / $elapsed;
$w{$_} = $res->{errors}{$_} // 0 for qw(connect read write closed bad timeout);
$w{resent} = $res->{resent} // 0;
$w{non2xx} = 0;
$w{non2xx} += $res->{status}{$_} for grep { !/^[23]/ } keys %{$res->{status}};
$w{"check_$_"} = $res->{checks}{$_} // 0
    for qw(checked non200 wrong_side wrong_reason wrong_hash no_kind);
@w{qw(p50 p99 max)} = @{$res->{latency}}{qw(p50 p99 max)};

my $st = status_json();
my %m = map { $_ => $st->{splits}{app}{variants}{$_} } qw(stable canary);

my %origin;

for my $side (qw(stable canary)) {
    my $f = "$op/$side.log";
    my $n = 0;

    # the origins flush their logs each second
    open my $fh, '<', $f or die "$f: $!";
    $n++ while <$fh>;
    close $fh;

    $origin{$side} = $n;
}

my $M = $m{stable}{requests} + $m{canary}{requests};
my $O = $origin{stable} + $origin{canary};
my $W = $w{requests};
my $reloads = @reload_secs + @reload_errors;
my @rs = sort { $a <=> $b } @reload_secs;

diag(sprintf "soak: %.0fs, %d connections, %d workers, %d reloads "
     . "(max %.2fs until the old workers were gone), %d weight writes, "
     . "%d pin changes, Redis down %.1fs half way",
     $elapsed, $CONNS, $WORKERS, $reloads, @rs ? $rs[-1] : 0, $writes,
     $pin_changes * 2, $redis_down_secs // 0);
diag(sprintf "load: %d responses, %.0f/s, latency p50 %sms p99 %sms max "
     . "%sms (timeout %ds)", $W, $w{rps},
     (map { $_ // '?' } @w{qw(p50 p99 max)}), $TIMEOUT);
diag("load: errors connect $w{connect}, read $w{read}, write $w{write}, "
     . "closed $w{closed}, bad $w{bad}, timeout $w{timeout}; resent "
     . "$w{resent}; non-2xx $w{non2xx}");
diag('load checks: ' . join ', ', map { "$_ " . $w{"check_$_"} }
                                  qw(checked non200 wrong_side wrong_reason
                                     wrong_hash no_kind));
diag("module (M): stable $m{stable}{requests}, canary "
     . "$m{canary}{requests}, total $M");
diag("origins (O): stable $origin{stable}, canary $origin{canary}, "
     . "total $O");
diag(sprintf 'M - O: stable %d, canary %d; M - W: %d',
     $m{stable}{requests} - $origin{stable},
     $m{canary}{requests} - $origin{canary}, $M - $W);
diag("status page: $status_bad failed reads; Prometheus: $prom_reads "
     . "reads, $prom_bad with buckets not cumulative"
     . ($prom_first_bad ? " (first: $prom_first_bad)" : ''));


# ---- assertions ------------------------------------------------------------

my $closed = $w{resent} + $w{read} + $w{write} + $w{closed} + $w{bad};

cmp_ok($W, '>', 1000 * $SECONDS / 10, "the load got $W responses");
is($w{non2xx}, 0, 'no non-2xx response');
is($w{check_checked}, $W, 'every response was checked');
is($w{check_non200}, 0, 'the checks saw no non-200');
is($w{check_wrong_side}, 0,
   'every response came from the variant the module chose');
is($w{check_wrong_reason}, 0,
   'overrides, cookie, pins and keys decided as the request said');
is($w{check_wrong_hash}, 0,
   'every hashed decision agrees with its bucket and weight');
is($w{check_no_kind}, 0, 'every response echoed the kind of its request');
is($w{connect}, 0, 'no connect error');
is($w{timeout}, 0, "no request unanswered for ${TIMEOUT}s");
cmp_ok($closed, '<=', $CONNS * $reloads,
       'requests resent or lost only as connections closed at reloads: '
       . "$closed for $reloads reloads of $CONNS connections");

for my $side (qw(stable canary)) {
    my $d = $m{$side}{requests} - $origin{$side};
    my $aborted = $m{$side}{responses}{'4xx'};

    ok($d >= 0 && $d <= $aborted,
       "$side: module - origin = $d, within 0 .. $aborted requests that "
       . 'clients abandoned (4xx)');
}

cmp_ok($M - $W, '>=', 0,
       'the module counted every response the load got');
cmp_ok($M - $W, '<=', $CONNS,
       'and at most one more per connection (in flight when the load '
       . 'stopped)');

for my $side (qw(stable canary)) {
    my $v = $m{$side};
    my $classes = 0;
    $classes += $_ for values %{$v->{responses}};

    is($classes + $v->{upstream_errors}, $v->{requests},
       "$side: response classes and upstream errors add up to requests");

    my $hist = 0;
    $hist += $_ for @{$v->{latency}{counts}};

    is($hist, $v->{requests}, "$side: the latency histogram holds every "
       . 'request');
    is($v->{upstream_errors}, 0, "$side: no upstream error");
}

is($prom_bad, 0, "Prometheus histograms cumulative up to +Inf == _count "
   . "in all $prom_reads reads") or diag($prom_first_bad);
is($status_bad, 0, 'the status page answered every second');

is(scalar(@reload_errors), 0, "$reloads reloads, each with its old "
   . 'workers gone') or diag($reload_errors[0]);
ok($restarted && defined $redis_down_secs && $redis_down_secs < 12,
   'nginx reconnected after the Redis restart');

is($st->{splits}{app}{weight}, $weights[-1],
   "the last weight written ($weights[-1]) is in force");
is($st->{splits}{app}{pins}{canary}, $PINS, "$PINS pins kept throughout");
ok($st->{redis}{connected}, 'connected to Redis at the end');

my @all = $t->worker_pids(all => 1);
my @live = $t->worker_pids;
is(scalar(@all), $WORKERS, "$WORKERS workers at the end");
is(scalar(@all) - scalar(@live), 0, 'none of them shutting down');

$t->stop;
$o->stop;

done_testing;
