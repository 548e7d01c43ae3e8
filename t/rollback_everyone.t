#!/usr/bin/perl

# Story: a rollback means everyone on stable, not only the tenants the
# weight moves.
#
# Split "app" at weight 30 has every way to ask for canary: an opt-in
# header, an employee header trusted from 127.0.0.2 (from=), the cookie,
# a tenant the operator pinned to canary, a tenant the sidecar pinned for
# its plan (in :pin:plan as well as :pin:canary, its contract) and the
# cohort "internal" at cohort_weight 100.  Each one reaches canary, in
# both routing forms ($canary_upstream and canary_balancer).
#
# "canary-ctl rollback" sends every one of them to stable, answered by
# the stable origin, with $canary_reason rolled_back and weight 0, in both
# forms and on every worker; the status page, Prometheus and the
# dashboard say it.  set-weight is refused until "canary-ctl reset",
# which lists the operator's pin as staying and removes the plan's; then
# the operator's weight brings routing back: the overrides, the cookie,
# the cohort and the operator's pin reach canary again, the plan's tenant
# follows its hash.  A reload while rolled back keeps everyone on stable.
#
# Then the same after a rollback written the way canary-sidecar writes it
# (src/sidecar/redis.c: MULTI, HINCRBY generation, HSET weight 0 state
# rolled_back updated_by updated_at, SREM of the plan's pins from
# :pin:canary and :pin:plan, XADD, its own state, EXEC, then PUBLISH).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_start;

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=300ms;

${\ split_block('app', 'stable_up', 'canary_up', 0,
                'override X-Canary-Opt-In true canary',
                'override X-Summit-Employee true canary from=127.0.0.2',
                'cookie canary',
                'cohort $http_x_cohort',
                'cohort_weight internal 100') }
    upstream api {
        canary_balancer app;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /b/ {
${\ CanaryTest::expose_vars() }
            proxy_pass http://api;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF

$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

# ---- helpers ---------------------------------------------------------------

sub ctl { canary_ctl($redis, @_) }

sub status { status_json($t)->{splits}{app} }

sub gen { scalar $t->redis_cli('HGET', 'canary:app', 'generation') }

# what redis.c sends, in one connection: MULTI, the commands, EXEC, then
# PUBLISH of the operation
sub as_the_sidecar {
    my ($op, @cmds) = @_;

    local $?;

    open my $fh, '|-', 'redis-cli -h 127.0.0.1 -p ' . $t->redis_port
                      . ' >/dev/null' or die "redis-cli: $!";
    print $fh join "\n", 'MULTI', @cmds, 'EXEC', "PUBLISH canary:app $op", '';
    close $fh;
}

my @tenants = map { "t$_" } 1 .. 400;
my @hash_stable = grep { !CanaryTest::is_canary('', $_, 30) } @tenants;
my @hash_canary = grep { CanaryTest::is_canary('', $_, 30) } @tenants;

my $OPERATOR_PIN = $hash_stable[0];     # the hash says stable
my $PLAN_PIN = $hash_stable[1];         # the sidecar's test tenant
my $PLAN_PIN2 = $hash_stable[2];
my $PLAIN = $hash_stable[3];            # asks for canary another way
my $HASHED = $hash_canary[0];           # canary by the weight

# every way to canary: name, headers, client address, reason on canary
my @ways = (
    [ 'opt-in header', { 'X-Tenant-Id' => $PLAIN,
                         'X-Canary-Opt-In' => 'true' }, undef, 'header' ],
    [ 'employee header from a trusted address',
      { 'X-Tenant-Id' => $PLAIN, 'X-Summit-Employee' => 'true' },
      '127.0.0.2', 'header' ],
    [ 'cookie canary=always', { 'X-Tenant-Id' => $PLAIN,
                                'Cookie' => 'canary=always' }, undef,
      'cookie' ],
    [ "the operator's pinned tenant", { 'X-Tenant-Id' => $OPERATOR_PIN },
      undef, 'pin' ],
    [ 'cohort internal (cohort_weight 100)',
      { 'X-Tenant-Id' => $PLAIN, 'X-Cohort' => 'internal' }, undef,
      'cohort' ],
    [ 'a tenant the weight sends to canary', { 'X-Tenant-Id' => $HASHED },
      undef, 'hash' ],
);

my @forms = ([ '$canary_upstream', '/' ], [ 'canary_balancer', '/b/x' ]);

sub ask {
    my ($path, $headers, $from) = @_;

    return $t->route($port, $path, $headers,
                     $from ? (local_address => $from) : ());
}

sub show {
    my ($d) = @_;

    return join ' ', map { "$_=" . ($d->{$_} // '-') }
                     qw(status side variant reason weight upstream);
}

# one request: the origin that answered, the variables, the upstream
sub is_routed {
    my ($d, $side, $reason, $what) = @_;

    my $ok = ($d->{status} // 0) == 200 && ($d->{side} // '') eq $side
             && ($d->{variant} // '') eq $side
             && ($d->{reason} // '') eq $reason
             && ($d->{upstream} // '') eq "${side}_up";

    local $Test::Builder::Level = $Test::Builder::Level + 1;

    ok $ok, "$what: $side by $reason" or diag 'got ' . show($d);
}

# every way, both forms
sub all_ways {
    my ($expect, $label) = @_;

    local $Test::Builder::Level = $Test::Builder::Level + 1;

    for my $f (@forms) {
        for my $w (@ways) {
            my ($name, $h, $from, $reason) = @$w;
            my ($side, $why) = $expect->($w);

            is_routed(ask($f->[1], $h, $from), $side, $why,
                      "$label, $f->[0]: $name");
        }
    }
}

# many requests of every way on both workers, both forms: how many did
# not go to stable by the rollback
sub leaks {
    my @reqs;

    for my $i (0 .. 399) {
        my $w = $ways[$i % @ways];
        push @reqs, { path => $forms[$i % 2][1],
                      headers => { %{$w->[1]} },
                      $w->[2] ? (local_address => $w->[2]) : () };
    }

    push @reqs, map { { path => '/', headers =>
                        { 'X-Tenant-Id' => $_ } } } @hash_canary[0 .. 49];

    my $res = $t->route_many($port, \@reqs, clients => 2);

    my @bad = grep { $_->{status} != 200 || $_->{side} ne 'stable'
                     || $_->{variant} ne 'stable'
                     || $_->{reason} ne 'rolled_back'
                     || $_->{weight} ne '0' } @$res;

    diag 'e.g. ' . show($bad[0]) if @bad;

    return (scalar @bad, scalar @$res, scalar(keys %{{ map { $_->{pid} => 1 }
                                                       @$res }}));
}

sub prometheus_rolled_back {
    return status_text($t, 'prometheus')
           =~ /^canary_rolled_back\{split="app"\} (\d+)$/m ? $1 : -1;
}

# ---- every way reaches canary ----------------------------------------------

ctl_ok($redis, 'set-weight', 'app', 30);
ctl_ok($redis, 'pin', 'app', 'canary', $OPERATOR_PIN);

# the sidecar's first stage pins its test tenant, as its contract says
as_the_sidecar('rollout_started',
               "SADD canary:app:pin:canary $PLAN_PIN",
               "SADD canary:app:pin:plan $PLAN_PIN",
               "SREM canary:app:pin:stable $PLAN_PIN",
               'HINCRBY canary:app generation 1',
               'HSET canary:app state running updated_by sidecar-t');

ok wait_until(3, sub { my $s = status();
                       $s->{weight} == 30 && $s->{pins}{canary} == 2
                       && $s->{state} eq 'running' }),
    'weight 30, two tenants pinned to canary';

push @ways, [ "the plan's pinned tenant", { 'X-Tenant-Id' => $PLAN_PIN },
              undef, 'pin' ];

all_ways(sub { ('canary', $_[0][3]) }, 'at 30%');

is_routed(ask('/', { 'X-Tenant-Id' => $PLAIN, 'X-Summit-Employee' => 'true' }),
          'stable', 'hash', 'the employee header from an untrusted address');
is prometheus_rolled_back(), 0, 'Prometheus: canary_rolled_back 0';

# ---- canary-ctl rollback: everyone on stable -------------------------------

my $mark = $t->log_mark;
my $t0 = time;
my ($rc, $out) = ctl('rollback', 'app', '--reason', 'tickets from tenants');
is $rc, 0, 'canary-ctl rollback app' or diag $out;

my $took = wait_until(3, sub {
    my $d = ask('/', { 'X-Tenant-Id' => $OPERATOR_PIN });
    ($d->{reason} // '') eq 'rolled_back' });
ok defined $took, 'the rollback applies';
diag sprintf "canary-ctl rollback: the pinned tenant on stable %.0fms after "
             . "canary-ctl started", (time - $t0) * 1000;

all_ways(sub { ('stable', 'rolled_back') }, 'rolled back');

my ($leaked, $n, $pids) = leaks();
is $leaked, 0, "all $n requests (every way, both forms, $pids workers) "
    . 'on stable by rolled_back with weight 0';

my $s = status();
is $s->{state}, 'rolled_back', 'status: state rolled_back';
is $s->{weight}, 0, 'status: weight 0';
is $s->{pins}{canary}, 2, 'the pins are still there (a reset removes them)';
is prometheus_rolled_back(), 1, 'Prometheus: canary_rolled_back 1';
is scalar(log_lines($t, qr/\[warn\].*canary split "app" rolled back by /
                        . qr/"canary-ctl:[^"]*" \(generation \d+\): every /
                        . qr/request goes to stable "stable_up" until /
                        . qr/canary-ctl reset/, $mark)), 1,
    'one log line says the split is rolled back, by whom';

# the dashboard makes it obvious
SKIP: {
    my $chromium = (grep { -x } '/usr/bin/chromium',
                                '/usr/bin/chromium-browser')[0];
    skip 'chromium is not installed', 4 unless $chromium;

    my $url = "http://127.0.0.1:$port/canary_status?format=html";
    my $profile = $t->prefix . '/chromium';
    my @flags = qw(--headless --no-sandbox --disable-gpu --no-first-run
                   --disable-background-networking --disable-component-update
                   --disable-sync --virtual-time-budget=3000);
    # one line: in backticks "\" and a newline is a newline, and the
    # redirection (and $?) would be a command of its own
    my $cmd = "$chromium @flags --user-data-dir=$profile --dump-dom '$url'";
    my $dom = `$cmd 2>/dev/null`;
    is $?, 0, 'chromium --dump-dom exits 0 (no crash, no signal)';

    like $dom, qr/class="split incident"[^>]*data-split="app"/,
        'dashboard: the split is marked as an incident';
    my $banner = 'ROLLED BACK: every request goes to stable until '
                 . 'canary-ctl reset';
    like $dom, qr/data-field="incident">\Q$banner\E</,
        'dashboard: a banner says it is rolled back';
    like $dom, qr/class="state-bad">state <b data-field="state">rolled_back</,
        'dashboard: the state, in red';
}

# a reload keeps it: the state is the incident, not the configuration
$t->reload;
($leaked, $n) = leaks();
is $leaked, 0, "after a reload: all $n requests still on stable";

# nothing but a reset
my $g = gen();
($rc, $out) = ctl('set-weight', 'app', 30);
is $rc, 2, 'set-weight is refused while rolled back';
like $out, qr/rolled back: canary-ctl reset first/, 'reset first, it says';
($rc, $out) = ctl('pin', 'app', 'canary', $PLAIN);
is $rc, 2, 'and so is pin';
is gen(), $g, 'neither wrote anything';

# ---- reset, then the operator's weight -------------------------------------

$mark = $t->log_mark;
($rc, $out) = ctl('reset', 'app', '--reason', 'v2.1 fixed');
is $rc, 0, 'canary-ctl reset app' or diag $out;
like $out, qr/^  the plan's pins removed from canary: 1\n    "\Q$PLAN_PIN\E"$/m,
    "reset: the plan's tenant $PLAN_PIN is unpinned";
like $out, qr/^\Q  pins that stay on canary (yours): 1\E\n
               \ {4}"\Q$OPERATOR_PIN\E"$/mx,
    "reset: the operator's $OPERATOR_PIN stays pinned, by name";

ok wait_until(3, sub { my $s = status();
                       $s->{state} eq 'ready' && $s->{pins}{canary} == 1 }),
    'state ready, one pin left';
is scalar(log_lines($t, qr/\[notice\].*canary split "app": the rollback /
                        . qr/ends with generation \d+/, $mark)), 1,
    'one log line says the rollback ends';
is prometheus_rolled_back(), 0, 'Prometheus: canary_rolled_back 0';

# at weight 0 after the reset the weight and the plan's tenant are stable;
# every other way to canary works again
my %after_reset = (hash => [ 'stable', 'hash' ]);
my $back = sub {
    my ($w) = @_;
    return @{ $after_reset{$w->[3]} } if $after_reset{$w->[3]};
    return ('stable', 'hash') if $w->[1]{'X-Tenant-Id'} eq $PLAN_PIN
                                 && keys %{$w->[1]} == 1;
    return ('canary', $w->[3]);
};
all_ways($back, 'after the reset, weight 0');

ctl_ok($redis, 'set-weight', 'app', 30);
ok wait_until(3, sub { status()->{weight} == 30 }), 'weight 30 again';

%after_reset = ();
all_ways($back, "after the reset, the operator's weight 30");

# ---- a rollback the way the sidecar writes it ------------------------------

# a new rollout pins the plan's tenant again
as_the_sidecar('rollout_started',
               "SADD canary:app:pin:canary $PLAN_PIN2",
               "SADD canary:app:pin:plan $PLAN_PIN2",
               "SREM canary:app:pin:stable $PLAN_PIN2",
               'HINCRBY canary:app generation 1',
               'HSET canary:app state running updated_by sidecar-t');
ok wait_until(3, sub { status()->{pins}{canary} == 2 }),
    "the plan's second tenant pinned";
is_routed(ask('/', { 'X-Tenant-Id' => $PLAN_PIN2 }), 'canary', 'pin',
          "the plan's tenant on canary");

$mark = $t->log_mark;
$t0 = time;
my $receipt = '{"receipt_id":"r-1","operation":"rollback_executed",'
              . '"split":"app","from_weight":30,"to_weight":0,'
              . '"state":"rolled_back","by":"sidecar-t"}';
as_the_sidecar('rollback_executed',
               'HINCRBY canary:app generation 1',
               'HSET canary:app weight 0 state rolled_back updated_by '
               . 'sidecar-t updated_at 2026-01-01T00:00:00Z',
               "SREM canary:app:pin:canary $PLAN_PIN2",
               "SREM canary:app:pin:plan $PLAN_PIN2",
               "XADD canary:app:receipts MAXLEN ~ 10000 * receipt '$receipt'",
               'HSET canary:app:sidecar status rolled_back');

$took = wait_until(3, sub {
    (ask('/b/x', { 'X-Tenant-Id' => $OPERATOR_PIN })->{reason} // '')
    eq 'rolled_back' });
ok defined $took, "the sidecar's rollback applies";
diag sprintf "sidecar's rollback: the pinned tenant on stable %.0fms after "
             . 'the write', (time - $t0) * 1000;

all_ways(sub { ('stable', 'rolled_back') }, "the sidecar's rollback");
($leaked, $n, $pids) = leaks();
is $leaked, 0, "all $n requests (every way, both forms, $pids workers) "
    . 'on stable by rolled_back';
is status()->{state}, 'rolled_back', 'status: state rolled_back';
is scalar(log_lines($t, qr/canary split "app" rolled back by "sidecar-t"/,
                    $mark)), 1, 'the log names the sidecar';

($rc, $out) = ctl('resume', 'app');
is $rc, 2, 'resume is refused while rolled back';

($rc, $out) = ctl('reset', 'app', '--reason', 'sidecar rolled back v2.2');
is $rc, 0, 'canary-ctl reset app' or diag $out;
like $out, qr/the sidecar's saved rollout deleted/,
    "reset: the sidecar's saved rollout deleted";
like $out, qr/^\Q  pins that stay on canary (yours): 1\E\n
               \ {4}"\Q$OPERATOR_PIN\E"$/mx,
    "reset: the operator's pin stays";
is $t->redis_cli('EXISTS', 'canary:app:pin:plan'), 0,
    "the plan's set is gone";

ctl_ok($redis, 'set-weight', 'app', 30);
ok wait_until(3, sub { my $s = status();
                       $s->{state} eq 'ready' && $s->{weight} == 30 }),
    'ready, weight 30';

all_ways($back, "after the sidecar's rollback, reset and weight 30");
is_routed(ask('/', { 'X-Tenant-Id' => $PLAN_PIN2 }), 'stable', 'hash',
          "the plan's second tenant follows its hash");

$t->stop;

done_testing;
