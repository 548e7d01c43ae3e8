#!/usr/bin/perl

# Story: five minutes of everything at once, and not one request lost or
# counted into the wrong split.
#
# Runs only with CANARY_SOAK=1 (make soak sets it; .ci/run runs it);
# CANARY_SOAK_SECONDS sets the length (default 300),
# CANARY_SOAK_CONNECTIONS the concurrency
# (default 2000), CANARY_SOAK_RELOAD_EVERY the seconds between reloads
# (default 2; 0: none, the control run for the socket errors below),
# CANARY_SOAK_TIMEOUT wrk's request timeout (default 30s: the long
# requests last up to 15s).
#
#   - nginx with the module, 4 workers, proxying to two origins that are
#     another nginx (2 workers) logging every request it serves;
#   - real Redis: the split's weight written every 100ms (as a writer
#     does: fields and HINCRBY generation in one script, then PUBLISH),
#     a pinned tenant added and one removed every 500ms (200 pinned
#     tenants stay), and Redis restarted twice, at a third and two thirds
#     of the run (SAVE, stop, 2s down, start);
#   - wrk, 2 threads, 2000 connections, a Lua script rotating 10000
#     tenants, override headers, the cookie, pinned tenants and requests
#     without a key; 1 request in 50 says "Connection: close", so new
#     connections come all the time besides the keep-alive ones; 5 in 100
#     are long requests, 5 to 15s (limit_rate on a body of that many
#     kilobytes), through a split of their own;
#   - nginx -s reload every 2s, and every reload changes the split set:
#     the long requests' split is renamed (slow_1, slow_2, ...), idle
#     splits that no location uses come and go.  Old workers live on
#     with their long requests (up to 15s: several generations at once),
#     and count each one into its split when it ends.
#
# Every response is checked by the Lua script: 200, from the variant the
# module chose, for the reason the request had (override, cookie, pin),
# and a hashed decision consistent with the weight and bucket it reports.
#
# Counters: when the load has stopped and nothing is in flight,
#   M = the module's requests of "app" (status page, stable + canary,
#       which the zone keeps across reloads), per side;
#   O = the lines of the origins' access logs for "app", per side;
#   W = the responses wrk received.
# Every request the module routed was proxied and every request an
# origin served was counted by the module: per side 0 <= M - O <= the
# module's 4xx (the origins answer 200 only: a 4xx is a 499, a client
# gone before nginx reached the origin; O > M would be counts lost).
# The same holds for the last long requests' split against the lines the
# origins logged for it.  Idle splits never count anything (read every
# second).
# wrk stops with requests in flight, at most one per connection:
# 0 <= M - W <= connections.
# wrk's socket errors are requests nginx never read: a connection that an
# old worker closed at a reload (nginx finishes what it has read, then
# closes keep-alive connections: a request written at that moment gets
# EOF, wrk counts a read or write error; HTTP clients retry such a
# request).  Each reload can do that once to each connection, so they
# are bounded by connections x reloads, and do not count as failures, as
# M == O shows that every request nginx read was answered.  Without
# reloads there is no such close: the control run
# (CANARY_SOAK_RELOAD_EVERY=0) must have none.  Timeouts and connect
# errors must be 0.
#
# Reloads: each one starts its workers (the old ones are not waited
# for: they hold long requests); at the end, once the long requests are
# done, no worker is "shutting down".  No worker crashes and no sanitizer
# reports (the error log is checked).  Prometheus text is read every
# second: histogram buckets must be cumulative up to +Inf == _count.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;

plan skip_all => 'optional: a soak test: set CANARY_SOAK=1 (make soak does)'
    unless $ENV{CANARY_SOAK};

my $SECONDS = $ENV{CANARY_SOAK_SECONDS} || 300;
my $CONNS = $ENV{CANARY_SOAK_CONNECTIONS} || 2000;
my $RELOAD = $ENV{CANARY_SOAK_RELOAD_EVERY} // 2;      # 0: no reloads

# wrk's request timeout: above the longest request (15s)
my $TIMEOUT = $ENV{CANARY_SOAK_TIMEOUT} || 30;
my $WORKERS = 4;
my $PINS = 200;
my $CTL = "$FindBin::Bin/../scripts/canary-ctl";

plan skip_all => 'wrk is not installed' unless grep { -x "$_/wrk" }
                                               split /:/, $ENV{PATH};

my $t = CanaryTest->new(name => 'nginx');
my $o = CanaryTest->new(name => 'origins');

my $port = $t->port('http');
my %oport = (stable => $o->port('stable'), canary => $o->port('canary'));
my $redis = '127.0.0.1:' . $t->redis_port;
my $op = $o->prefix;


# ---- the origins: another nginx, logging each request it serves -----------

# the long requests' bodies: K kilobytes, sent at 1 KB/s by the front
for my $side (qw(stable canary)) {
    make_path("$op/www-$side/slow");

    for my $k (5 .. 15) {
        open my $fh, '>', "$op/www-$side/slow/$k" or die "$op: $!";
        my $body = "$side ${side}_up\n";
        print $fh $body . ('.' x ($k * 1000 - length $body));
        close $fh;
    }
}

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
    log_format split '\$http_x_split \$status';
    keepalive_requests 1000000;

    server {
        listen 127.0.0.1:$oport{stable} backlog=4096;
        access_log $op/stable.log one buffer=256k flush=1s;

        location / {
            add_header X-Echo-Kind \$http_x_kind always;
            return 200 "stable stable_up\\n";
        }

        location /slow/ {
            root $op/www-stable;
            default_type text/plain;
            add_header X-Echo-Kind \$http_x_kind always;
            access_log $op/slow.log split buffer=64k flush=1s;
        }
    }

    server {
        listen 127.0.0.1:$oport{canary} backlog=4096;
        access_log $op/canary.log one buffer=256k flush=1s;

        location / {
            add_header X-Echo-Kind \$http_x_kind always;
            return 200 "canary canary_up\\n";
        }

        location /slow/ {
            root $op/www-canary;
            default_type text/plain;
            add_header X-Echo-Kind \$http_x_kind always;
            access_log $op/slow.log split buffer=64k flush=1s;
        }
    }
}
EOF

mkdir "$op/tmp";
$o->start;


# ---- nginx with the module -------------------------------------------------

$t->redis_start;

my @IDLE = map { "idle_$_" } qw(a b c d e f);

# generation $gen: "app", the long requests' split slow_$gen, and four of
# the idle splits, another set each time
# The soak's load is wrk, not t/lib/Traffic.pm, which every other test
# uses: wrk (C, a Debian package) drives 2,000 connections about half as
# fast again as the Perl generator on the same 2 cores, and the soak is
# about pressure.  It writes its Lua script and output in the prefix.
sub start_wrk {
    my ($lua_text, @args) = @_;

    my $lua = $t->prefix . '/wrk.lua';
    my $out = $t->prefix . '/wrk.out';

    open my $fh, '>', $lua or die "$lua: $!\n";
    print $fh $lua_text;
    close $fh;

    my $pid = fork;
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        exec 'sh', '-c', 'ulimit -n 20000 2>/dev/null || ulimit -n 8192; '
             . 'exec "$@"', 'sh', 'wrk', '-s', $lua, @args
            or POSIX::_exit(127);
    }

    return ($pid, $out);
}


sub front_conf {
    my ($gen, @more) = @_;

    my @idle = ((grep { ($gen * 7 + ord(substr $_, -1)) % 3 } @IDLE), @more);

    my $idle = join '', map { <<"EOF" } @idle;
    canary_split $_ { stable stable_up; canary canary_up; weight 50; }
EOF

    my $conf = $t->write_conf(<<"EOF", workers => $WORKERS);
    canary_zone canary 16m;
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

    canary_split slow_$gen {
        stable stable_up;
        canary canary_up;
        weight 50;
    }

$idle
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

        location /slow/ {
            canary slow_$gen;
            limit_rate 1k;
${\ CanaryTest::expose_vars() }
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Split slow_$gen;
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

    return ("slow_$gen", @idle);
}

my $gen = 1;
my ($slow_split, @idle) = front_conf($gen);
my %idle_ever = map { $_ => 1 } @idle;

$t->start;

# a reload that does not wait for the old workers (they hold long
# requests): the new ones run and the old ones stopped accepting
sub reload_now {
    my %old = map { $_ => 1 } $t->worker_pids(all => 1);
    my $mark = $t->log_mark;

    my ($rc, $out) = $t->_run_nginx('-s', 'reload');
    die "nginx -s reload: exit $rc: $out\n" if $rc;

    my $deadline = time + 20;

    until (grep({ !$old{$_} } $t->worker_pids) >= $WORKERS
           && !grep({ $old{$_} } $t->worker_pids))
    {
        my $since = $t->log_since($mark);
        die "reload refused:\n$since\n" if $since =~ /\[emerg\]/;
        die "reload did not start new workers:\n$since\n" if time > $deadline;
        sleep 0.02;
    }
}

sub ctl {
    my (@args) = @_;

    my $out = `$CTL --redis $redis @args 2>&1`;

    return ($? >> 8, $out);
}

# a writer on one connection, as canary-ctl writes: fields and
# generation in one script, then PUBLISH
my $rsock;

sub redis_cmd {
    my (@args) = @_;

    $rsock ||= IO::Socket::INET->new(PeerAddr => $redis, Timeout => 1)
        or return undef;

    my $req = '*' . @args . "\r\n"
              . join('', map { '$' . length($_) . "\r\n$_\r\n" } @args);

    if (!syswrite($rsock, $req)) {
        undef $rsock;
        return undef;
    }

    my $reply = '';
    my $sel = IO::Select->new($rsock);

    while ($reply !~ /\r\n$/) {
        my $n = $sel->can_read(1) ? sysread($rsock, $reply, 4096,
                                            length $reply) : 0;
        if (!$n) {
            undef $rsock;
            return undef;
        }
    }

    return $reply =~ /^-/ ? undef : $reply;
}

sub redis_write {
    my ($key, @fields) = @_;

    my $r = redis_cmd('EVAL', "redis.call('HSET', KEYS[1], unpack(ARGV)); "
                      . "return redis.call('HINCRBY', KEYS[1], "
                      . "'generation', 1)", 1, $key, @fields);
    return 0 unless $r;

    redis_cmd('PUBLISH', $key, 'soak');

    return 1;
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

# canary-ctl writes a split only once a live nginx reports it
ok(wait_for(10, sub { (ctl('fleet', 'app', '--json'))[1] =~ /"node":/ }),
   'nginx reports split app');

my ($rc, $out) = ctl('set-weight', 'app', 20);
is($rc, 0, 'canary-ctl set-weight app 20') or diag($out);

($rc, $out) = ctl('pin', 'app', 'canary', map { "pin-$_" } 0 .. $PINS - 1);
is($rc, 0, "canary-ctl pin app canary: $PINS tenants") or diag($out);

ok(wait_for(10, sub {
        my $s = status_json();
        $s && $s->{redis}{connected} && $s->{splits}{app}{source} eq 'redis'
        && $s->{splits}{app}{pins}{canary} == $PINS }),
   "nginx synced the weight and $PINS pins from Redis");

my $zone_used_start = status_json()->{zone}{used};


# ---- the load --------------------------------------------------------------

my $LUA = <<'EOF';
-- rotates tenants and request kinds; checks every response

local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

function init(args)
    n = 0
    checked = 0
    non200 = 0
    wrong_side = 0
    wrong_reason = 0
    wrong_hash = 0
    no_kind = 0
    slow = 0
end

local kinds = {}

function request()
    n = n + 1

    local i = n * 2 + id
    local k = i % 100
    local h = { ["Host"] = "soak" }
    local path = "/"
    local kind

    if k >= 95 then
        kind = "slow"
        h["X-Tenant-Id"] = "t" .. (i % 10000)
        path = "/slow/" .. (5 + math.floor(i / 100) % 11)
    elseif k < 2 then
        kind = "pin"
        h["X-Tenant-Id"] = "pin-" .. (i % 200)
    elseif k < 5 then
        kind = "never"
        h["X-Tenant-Id"] = "t" .. (i % 10000)
        h["X-Canary"] = "never"
    elseif k < 8 then
        kind = "optin"
        h["X-Tenant-Id"] = "t" .. (i % 10000)
        h["X-Canary-Opt-In"] = "true"
    elseif k < 10 then
        kind = "cookie"
        h["X-Tenant-Id"] = "t" .. (i % 10000)
        h["Cookie"] = "theme=dark; canary=always"
    elseif k < 11 then
        kind = "nokey"
    else
        kind = "hash"
        h["X-Tenant-Id"] = "t" .. (i % 10000)
    end

    if i % 50 == 0 then
        h["Connection"] = "close"
    end

    h["X-Kind"] = kind

    return wrk.format("GET", path, h)
end

local want = {
    pin    = { "canary", "pin" },
    never  = { "stable", "header" },
    optin  = { "canary", "header" },
    cookie = { "canary", "cookie" },
    nokey  = { nil,      "random" },
    hash   = { nil,      "hash" },
    slow   = { nil,      "hash" },
}

function response(status, headers, body)
    checked = checked + 1

    if status ~= 200 then
        non200 = non200 + 1
        return
    end

    local side = body:match("^(%a+)")
    local variant = headers["X-Canary-Variant"]

    if side ~= variant then
        wrong_side = wrong_side + 1
    end

    local w = want[headers["X-Echo-Kind"] or ""]

    if w == nil then
        no_kind = no_kind + 1
        return
    end

    if headers["X-Echo-Kind"] == "slow" then
        slow = slow + 1
    end

    if headers["X-Canary-Reason"] ~= w[2] or (w[1] and variant ~= w[1]) then
        wrong_reason = wrong_reason + 1
        return
    end

    if w[2] == "hash" then
        local b = tonumber(headers["X-Canary-Bucket"])
        local pct = tonumber(headers["X-Canary-Weight"])

        if b == nil or pct == nil
           or (b < math.floor(pct * 100 + 0.5)) ~= (variant == "canary")
        then
            wrong_hash = wrong_hash + 1
        end
    end
end

function done(summary, latency, requests)
    local names = { "checked", "non200", "wrong_side", "wrong_reason",
                    "wrong_hash", "no_kind", "slow" }

    for _, name in ipairs(names) do
        local sum = 0
        for _, thread in ipairs(threads) do
            sum = sum + (thread:get(name) or 0)
        end
        io.write(string.format("soak-check %s %d\n", name, sum))
    end

    io.write(string.format("soak-latency p50 %.3f p99 %.3f max %.3f\n",
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        latency.max / 1000))
end
EOF

my ($wrk, $wrk_out) = start_wrk($LUA, '-t2', "-c$CONNS",
                                     "-d${SECONDS}s", '--timeout',
                                     "${TIMEOUT}s", "http://127.0.0.1:$port/");

# the writer: its own process, so that reloads and reads never delay it;
# each weight it wrote is a line of $written, each pin change one of
# $churned
my $written = $t->prefix . '/weights-written';
my $churned = $t->prefix . '/pins-changed';

my $writer = fork // die "fork: $!";

if ($writer == 0) {
    $SIG{TERM} = sub { POSIX::_exit(0) };

    open my $wfh, '>', $written or die "$written: $!";
    open my $pfh, '>', $churned or die "$churned: $!";
    $wfh->autoflush(1);
    $pfh->autoflush(1);

    my ($next_pins, $n) = (time, 0);

    # TERM waits until a write and its line are both done: killed in
    # between, the last weight in Redis was missing from $written
    my $term = POSIX::SigSet->new(POSIX::SIGTERM());

    for (;;) {
        my $w = 1 + int rand 99;

        POSIX::sigprocmask(POSIX::SIG_BLOCK(), $term);

        print $wfh "$w\n"
            if redis_write('canary:app', weight => $w, state => 'running',
                           updated_by => 'soak');

        POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), $term);

        # churn: one tenant in, one out, on the stable side
        if (time >= $next_pins) {
            if (redis_cmd('SADD', 'canary:app:pin:stable',
                          'churn-' . ($n % 50))
                && redis_cmd('SREM', 'canary:app:pin:stable',
                             'churn-' . (($n + 25) % 50))
                && redis_write('canary:app', updated_by => 'soak-pins'))
            {
                print $pfh "$n\n";
                $n++;
            }

            $next_pins = time + 0.5;
        }

        sleep 0.1;
    }
}

my $t0 = time;
my (%next, @reload_secs, @reload_errors, @restarts);
my ($prom_reads, $prom_bad, $status_bad) = (0) x 3;
my ($prom_first_bad, $redis_up_at, $redis_started, $idle_first_bad);
my ($idle_bad, $zone_used_max) = (0, 0);

$next{reload} = $RELOAD ? $t0 + $RELOAD : 9e99;
$next{prom} = $t0 + 5;
$next{status} = $t0 + 1;

# Redis restarts at a third and at two thirds of the run
my @restart_at = ($t0 + $SECONDS / 3, $t0 + 2 * $SECONDS / 3);

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

sub requests_of {
    my ($s) = @_;
    return $s->{variants}{stable}{requests} + $s->{variants}{canary}{requests};
}

# an idle split never counts: a count there came from another split's
# request, written through a slot that was freed and given to it
sub idle_check {
    my ($st) = @_;

    for my $name (grep { /^idle_/ } keys %{$st->{splits}}) {
        my $n = requests_of($st->{splits}{$name});

        if ($n) {
            $idle_bad++;
            $idle_first_bad //= "$name: $n requests";
        }
    }
}

while (waitpid($wrk, WNOHANG) == 0) {
    my $now = time;

    # the last split takes traffic for a while before wrk stops
    if ($now >= $next{reload} && $now < $t0 + $SECONDS - 5) {
        my $r0 = time;

        $gen++;
        ($slow_split, @idle) = front_conf($gen);
        $idle_ever{$_} = 1 for @idle;

        if (eval { reload_now(); 1 }) {
            push @reload_secs, time - $r0;

        } else {
            push @reload_errors, $@;
        }

        $next{reload} = time + $RELOAD;
    }

    if ($now >= $next{status}) {
        my $st = status_json();

        if ($st) {
            idle_check($st);
            $zone_used_max = $st->{zone}{used}
                if $st->{zone}{used} > $zone_used_max;

            if ($redis_started && $st->{redis}{connected}) {
                push @restarts, time - $redis_started + 2;
                $redis_started = undef;
            }

        } else {
            $status_bad++;
        }

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

    # Redis restarts with its data: down 2s, nginx carries on meanwhile
    if (@restart_at && $now >= $restart_at[0] && !$redis_up_at) {
        shift @restart_at;

        $t->redis_cli('SAVE');
        $t->redis_stop;
        $redis_up_at = time + 2;
    }

    if ($redis_up_at && $now >= $redis_up_at) {
        $t->redis_start;
        $redis_up_at = undef;
        $redis_started = time;
    }

    sleep 0.02;
}

my $wrk_rc = $?;
my $elapsed = time - $t0;

kill 'TERM', $writer;
waitpid $writer, 0;

my @weights = do { open my $fh, '<', $written or die; map { chomp; $_ } <$fh> };
my $writes = @weights;
my $pin_changes = do { open my $fh, '<', $churned or die; () = <$fh> };

# the last write is in force once read
wait_for(5, sub { my $s = status_json();
                  $s && $s->{splits}{app}{weight} == $weights[-1] });

# the long requests wrk left end as it closed them: then the old workers
# exit; nothing in flight any more
my $quiet = wait_for(30, sub { $t->worker_pids(all => 1) == $WORKERS });
sleep 2;

my $wrk_text = do {
    open my $fh, '<', $wrk_out or die "$wrk_out: $!";
    local $/;
    <$fh>;
};

is($wrk_rc, 0, 'wrk ran to the end') or diag($wrk_text);


# ---- figures ---------------------------------------------------------------

my %w;

($w{requests}) = $wrk_text =~ /(\d+) requests in/;
($w{rps}) = $wrk_text =~ /Requests\/sec:\s+([\d.]+)/;
@w{qw(connect read write timeout)} = $wrk_text =~
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
($w{non2xx}) = $wrk_text =~ /Non-2xx or 3xx responses: (\d+)/;
$w{$_} //= 0 for qw(connect read write timeout non2xx);
$w{"check_$1"} = $2 while $wrk_text =~ /^soak-check (\w+) (\d+)$/mg;
@w{qw(p50 p99 max)} = $wrk_text =~
    /^soak-latency p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+)$/m;

my $st = status_json();
my %m = map { $_ => $st->{splits}{app}{variants}{$_} } qw(stable canary);

idle_check($st);

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

# the long requests, per split, as the origins served them
my %slow_origin;

{
    open my $fh, '<', "$op/slow.log" or die "$op/slow.log: $!";
    while (my $line = <$fh>) {
        $slow_origin{$1}++ if $line =~ /^(\S+) /;
    }
}

my $slow_last = $st->{splits}{$slow_split};
my $slow_origins = 0;
$slow_origins += $_ for values %slow_origin;

my $M = $m{stable}{requests} + $m{canary}{requests};
my $O = $origin{stable} + $origin{canary};
my $W = $w{requests} // 0;
my $W_app = $W - ($w{check_slow} // 0);
my $reloads = @reload_secs + @reload_errors;
my @rs = sort { $a <=> $b } @reload_secs;

diag(sprintf "soak: %.0fs, %d connections, %d workers, %d reloads "
     . "(max %.2fs until the new workers ran), %d weight writes, "
     . "%d pin changes, Redis restarted %d times (reconnected %s s after "
     . "it went down), old workers gone %s s after wrk",
     $elapsed, $CONNS, $WORKERS, $reloads, @rs ? $rs[-1] : 0, $writes,
     $pin_changes * 2, scalar(@restarts),
     join('/', map { sprintf '%.1f', $_ } @restarts),
     defined $quiet ? sprintf('%.1f', $quiet) : 'never');
diag(sprintf 'long requests: %d answered, %d served by the origins in %d '
     . 'splits; the last split %s: module %d, origins %d', 
     $w{check_slow} // 0, $slow_origins, scalar(keys %slow_origin),
     $slow_split, $slow_last ? requests_of($slow_last) : -1,
     $slow_origin{$slow_split} // 0);
diag(sprintf 'idle splits: %d seen, %d counts where none belonged%s; zone: '
     . '%d used at the start, %d at most', scalar(keys %idle_ever),
     $idle_bad, $idle_first_bad ? " (first: $idle_first_bad)" : '',
     $zone_used_start, $zone_used_max);
diag(sprintf "wrk: %d responses, %.0f/s, latency p50 %sms p99 %sms max "
     . "%sms (timeout %ds)", $W, $w{rps} // 0,
     (map { $_ // '?' } @w{qw(p50 p99 max)}), $TIMEOUT);
diag("wrk: socket errors connect $w{connect}, read $w{read}, write "
     . "$w{write}, timeout $w{timeout}; non-2xx $w{non2xx}");
diag('wrk checks: ' . join ', ', map { "$_ " . ($w{"check_$_"} // '?') }
                                 qw(checked non200 wrong_side wrong_reason
                                    wrong_hash no_kind));
diag("module (M): stable $m{stable}{requests}, canary "
     . "$m{canary}{requests}, total $M");
diag("origins (O): stable $origin{stable}, canary $origin{canary}, "
     . "total $O");
diag(sprintf 'M - O: stable %d, canary %d; M - W (without the long '
     . 'requests): %d', $m{stable}{requests} - $origin{stable},
     $m{canary}{requests} - $origin{canary}, $M - $W_app);
diag("status page: $status_bad failed reads; Prometheus: $prom_reads "
     . "reads, $prom_bad with buckets not cumulative"
     . ($prom_first_bad ? " (first: $prom_first_bad)" : ''));


# ---- assertions ------------------------------------------------------------

cmp_ok($W, '>', 1000 * $SECONDS / 10, "wrk got $W responses");
is($w{non2xx}, 0, 'no non-2xx response');
is($w{check_non200} // -1, 0, 'the Lua checks saw no non-200');
is($w{check_wrong_side} // -1, 0,
   'every response came from the variant the module chose');
is($w{check_wrong_reason} // -1, 0,
   'overrides, cookie, pins and keys decided as the request said');
is($w{check_wrong_hash} // -1, 0,
   'every hashed decision agrees with its bucket and weight');
is($w{check_no_kind} // -1, 0, 'every response was checked');
is($w{connect}, 0, 'no connect error');
is($w{timeout}, 0, "no request unanswered for ${TIMEOUT}s");
cmp_ok($w{read} + $w{write}, '<=', $CONNS * $reloads,
       'read/write errors only as connections closed at reloads: '
       . ($w{read} + $w{write}) . " for $reloads reloads of $CONNS "
       . 'connections');

for my $side (qw(stable canary)) {
    my $d = $m{$side}{requests} - $origin{$side};
    my $aborted = $m{$side}{responses}{'4xx'};

    ok($d >= 0 && $d <= $aborted,
       "$side: module - origin = $d, within 0 .. $aborted requests that "
       . 'clients abandoned (4xx)');
}

cmp_ok($M - $W_app, '>=', 0,
       'the module counted every response of app wrk got');
cmp_ok($M - $W_app, '<=', $CONNS,
       'and at most one more per connection (in flight when wrk stopped)');

cmp_ok($w{check_slow} // 0, '>', 0, 'long requests were answered');
cmp_ok($slow_origins, '>=', $w{check_slow} // 0,
       'the origins served every long request wrk got');

{
    my $n = $slow_last ? requests_of($slow_last) : -1;
    my $d = $n - ($slow_origin{$slow_split} // 0);
    my $aborted = $slow_last
        ? $slow_last->{variants}{stable}{responses}{'4xx'}
          + $slow_last->{variants}{canary}{responses}{'4xx'} : 0;

    ok($d >= 0 && $d <= $aborted,
       "$slow_split, the last long requests' split: module - origins = $d, "
       . "within 0 .. $aborted abandoned: its own requests, no other's");
}

is($idle_bad, 0, 'no count in an idle split, in any status read: nothing '
   . 'counted into a slot another split had') or diag($idle_first_bad);

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

cmp_ok($reloads, '>=', $RELOAD ? $SECONDS / $RELOAD / 2 : 0,
       "$reloads reloads");
is(scalar(@reload_errors), 0, 'each reload started its workers, each with '
   . 'another split set') or diag($reload_errors[0]);
ok(defined $quiet, 'the old workers exited once the long requests were '
   . 'done');
is(scalar(grep { $_ < 12 } @restarts), 2,
   'nginx reconnected after each of the 2 Redis restarts');

is($st->{splits}{app}{weight}, $weights[-1],
   "the last weight written ($weights[-1]) is in force");
is($st->{splits}{app}{pins}{canary}, $PINS, "$PINS pins kept throughout");
ok($st->{redis}{connected}, 'connected to Redis at the end');

my @all = $t->worker_pids(all => 1);
my @live = $t->worker_pids;
is(scalar(@all), $WORKERS, "$WORKERS workers at the end");
is(scalar(@all) - scalar(@live), 0, 'none of them shutting down');

# no old worker left: the next reloads free every slot of the splits
# gone; slow_1, which had requests, comes back from zero
$gen++;
front_conf($gen);
reload_now();
wait_for(10, sub { $t->worker_pids(all => 1) == $WORKERS });
$gen++;
front_conf($gen, 'slow_1');
reload_now();

$st = status_json();
diag("zone: $st->{zone}{used} used once the slots kept for old workers "
     . 'were freed');
is(requests_of($st->{splits}{slow_1}), 0, 'slow_1 added again comes back '
   . 'from zero: its slot was freed once no worker could use it');

$t->stop;
$o->stop;

done_testing;
