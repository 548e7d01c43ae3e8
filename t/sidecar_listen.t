#!/usr/bin/perl

# Story: the sidecar is scraped and probed like any daemon beside nginx.
# With --listen it serves /metrics (promtool-clean, the values the
# rollout has in Redis and its receipts), /healthz and /readyz, from
# its own loop, without a thread: a client that connects and sends
# nothing, or sends a byte now and then, does not keep the rollout from
# its next decision; a loop that cannot keep its pace says so (503),
# and one that is stopped answers nothing, which a probe's timeout
# sees; Redis down makes it not ready, with the reason, until Redis is
# back.  A bad --listen is refused before anything starts.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempfile);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'listen');
my $t = $s->t;
my $lp = $t->port('listen');

# ---- a bad --listen: exit 2, the value named, nothing touched ----------

for my $bad ('nope', 'localhost:9100', '127.0.0.1:0', '127.0.0.1:70000',
             '[::1:80', '127.0.0.1') {
    my ($rc, $out) = $s->run_sidecar($SidecarTest::SIDECAR, '--redis',
        '127.0.0.1:1', '--split', 'api', '--listen', $bad);
    is($rc, 2, "--listen $bad: exit 2");
    like($out, qr/invalid --listen "\Q$bad\E"/, "--listen $bad: named");
}

{
    my $busy = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $t->port('busy'), Listen => 1, ReuseAddr => 1)
        or die "listen: $!";
    my ($rc, $out) = $s->run_sidecar($SidecarTest::SIDECAR, '--redis',
        '127.0.0.1:1', '--split', 'api', '--listen',
        '127.0.0.1:' . $t->port('busy'));
    is($rc, 2, 'a --listen address in use: exit 2');
    like($out, qr/--listen 127\.0\.0\.1:\d+: Address already in use/,
         'and why');
}

my ($rc, $out) = $s->run_sidecar($SidecarTest::SIDECAR, '--redis',
    '127.0.0.1:1', '--split', 'api', '--listen', "127.0.0.1:$lp", '--once');
is($rc, 2, '--listen with --once: exit 2');

# ---- a rollout, scraped ---------------------------------------------------

$s->start;
$s->traffic(clients => 3, rate => 100);
$s->sidecar(plan => fast_plan(), args => ['--listen', "127.0.0.1:$lp"]);

sub get {
    my ($path, %o) = @_;
    return $t->get($lp, $path, undef, timeout => $o{timeout} || 5);
}

sub metrics {
    my $res = get('/metrics');
    my %m;
    for (split /\n/, $res->{content} // '') {
        next if /^#/;
        $m{$1} = $2 if /^(\S+) (\S+)$/;
    }
    return ($res, \%m);
}

$s->wait_for(sub { $s->hget('state') eq 'awaiting_resume' }, 40,
             'walked to the manual gate')
    or $s->show_log;

my ($res, $m) = metrics();
is($res->{status}, 200, '/metrics: 200');
like($res->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4},
     "/metrics: Prometheus' text format");

SKIP: {
    skip 'promtool is not installed', 2 unless -x '/usr/bin/promtool';

    my ($fh, $file) = tempfile(DIR => $s->prefix);
    print $fh $res->{content};
    close $fh;

    my $pt = `/usr/bin/promtool check metrics < $file 2>&1`;
    is($?, 0, 'promtool check metrics passes');
    is($pt, '', 'without a warning') or diag($pt);
}

my $sp = 'split="api"';
my %ops;
$ops{$_}++ for $s->operations;
my %state = %{$s->state_hash};

is($m->{qq(canary_sidecar_stage{$sp,stage="50_percent"})}, 3,
   'stage: 50_percent, index 3, as in Redis (' . $s->hget('weight') . '%)');
is($m->{qq(canary_sidecar_weight_percent{$sp})}, $s->hget('weight'),
   'weight: the split\'s');
is($m->{qq(canary_sidecar_rollout_status{$sp,status="awaiting_resume"})}, 1,
   'status awaiting_resume: 1');
is(scalar(grep { /^canary_sidecar_rollout_status\{/ && $m->{$_} == 1 }
          keys %$m), 1, 'and no other status');
is($m->{qq(canary_sidecar_hold_required_seconds{$sp})}, 2,
   'hold required: 2 seconds');
cmp_ok($m->{qq(canary_sidecar_hold_elapsed_seconds{$sp})}, '>=', 2,
       'hold elapsed: past it');
for my $op (qw(rollout_started canary_phase_complete traffic_promoted
               awaiting_resume)) {
    is($m->{qq(canary_sidecar_decisions_total{$sp,operation="$op"})},
       $ops{$op}, "decisions_total{operation=\"$op\"}: $ops{$op}, as the "
       . 'receipts');
}
is($m->{qq(canary_sidecar_decisions_total{$sp,operation="rollback_executed"})},
   0, 'decisions_total{operation="rollback_executed"}: 0');
is($m->{qq(canary_sidecar_leader{$sp})}, 1, 'it holds the lease');
is($m->{qq(canary_sidecar_redis_up{$sp})}, 1, 'redis up');
is($m->{qq(canary_sidecar_nginx_answered{$sp})}, 1, 'one nginx answered');
is($m->{qq(canary_sidecar_notifications_total{$sp,result="sent"})}, 0,
   'notifications sent: 0');
is($m->{qq(canary_sidecar_redis_errors_total{$sp})}, 0, 'no Redis error');
for my $check (qw(latency_p99_ms error_rate_percent availability_percent)) {
    my @one = grep { /^canary_sidecar_check_status\{$sp,check="$check"/
                     && $m->{$_} == 1 } keys %$m;
    is(scalar @one, 1, "check $check: one status");
    like($m->{qq(canary_sidecar_check_p_value{$sp,check="$check"})} // '',
         qr/^[\d.e+-]+$/, "check $check: a p-value");
}
cmp_ok(abs($m->{qq(canary_sidecar_last_step_timestamp_seconds{$sp})} - time),
       '<', 5, 'the last step: just now');

$res = get('/healthz');
is($res->{status}, 200, '/healthz: 200') or diag($res->{content});
$res = get('/readyz');
is($res->{status}, 200, '/readyz: 200') or diag($res->{content});
like($res->{content}, qr/^ready: Redis reached, 1 of 1 nginx/, 'and why');

my $json = eval { decode_json(get('/status.json')->{content}) } || {};
is($json->{rollout}{stage_name}, '50_percent', '/status.json: the stage');
is_deeply([map { $_->{receipt_id} } @{$json->{receipts}}],
          [map { $_->{receipt_id} } $s->receipts],
          '/status.json: the receipts of the stream');
is(get('/nope')->{status}, 404, 'another path: 404');
is($t->request('POST', $lp, '/metrics', undef, content => 'x')->{status},
   405, 'POST: 405');

# ---- a standby, and fleet mode (the nginx that report to Redis) ----------

my $lp3 = $t->port('listen3');
$s->sidecar(id => 'standby', fleet => 1,
            args => ['--listen', "127.0.0.1:$lp3"]);
my $sm;
$s->wait_for(sub {
    my $r = $t->get($lp3, '/metrics', undef, timeout => 3);
    $sm = $r->{content} // '';
    $sm =~ /^canary_sidecar_steps_total\{$sp\} [1-9]/m }, 10,
    'the standby serves /metrics');
like($sm, qr/^canary_sidecar_leader\{$sp\} 0$/m, 'standby: leader 0');
unlike($sm, qr/^canary_sidecar_stage\{/m,
       'standby: no rollout it has not read');
like($sm, qr/^canary_sidecar_nginx_answered\{$sp\} 1$/m,
     'fleet mode: the node that reports answered');
like($sm, qr/^canary_sidecar_status_fetch_errors_total\{$sp\} 0$/m,
     'fleet mode: no fetch error');
$res = $t->get($lp3, '/readyz', undef, timeout => 3);
is($res->{status}, 200, 'standby in fleet mode: /readyz 200')
    or diag($res->{content});
$s->kill_sidecar('standby');

# ---- a loop that cannot keep its pace: 503; a stopped one: no answer -----

# an "nginx" that accepts and never answers: each step waits its 1s
# fetch timeout, over 3 intervals of 250ms
my $hang = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
    LocalPort => $t->port('hang'), Listen => 64, ReuseAddr => 1)
    or die "listen: $!";
my $lp2 = $t->port('listen2');
$s->sidecar(id => 'slow', plan => fast_plan(),
            args => ['--dry-run', '--listen', "127.0.0.1:$lp2", '--status',
                     'http://127.0.0.1:' . $t->port('hang')
                     . '/canary_status']);

my $h;
$s->wait_for(sub {
    $h = $t->get($lp2, '/healthz', undef, timeout => 3);
    $h->{status} == 503 }, 10, '/healthz: 503 while each step takes 1s')
    or diag($h->{content});
# at least the 1s fetch timeout; more on a loaded machine (the other
# nginx may miss it too)
like($h->{content}, qr/^stuck: the last step began (?:[1-9][\d.]*|\d+m[\d.]+)s ago, over 3 intervals \(750ms\)/,
     'and why: ' . ($h->{content} // ''));

my $spid = $s->{sidecars}{slow};
kill 'STOP', $spid;
sleep 0.3;
$h = $t->get($lp2, '/healthz', undef, timeout => 2);
isnt($h->{status}, 200, 'stopped (SIGSTOP): /healthz does not answer '
     . "($h->{status}): a probe's timeout fails it");
kill 'CONT', $spid;
$s->kill_sidecar('slow');
close $hang;

# ---- hostile clients do not delay a decision -----------------------------

# eight connect and send nothing; one sends a request a byte at a time
my @idle = map { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$lp")
                 or die "connect: $!" } 1 .. 8;
my $slow = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$lp") or die $!;
$slow->autoflush(1);
my $pid = fork // die;
if ($pid == 0) {
    for my $c (split //, "GET /metrics HTTP/1.1\r\nX-Slow: " . 'x' x 100) {
        print $slow $c or last;
        sleep 0.2;
    }
    POSIX::_exit(0);
}

# over 16 from one address: the extra ones are closed at once
my @more = map { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$lp")
                 or die "connect: $!" } 1 .. 10;
sleep 0.5;
my $closed = grep { closed_now($_) } @more;
is($closed, 10 + 9 - 16, "over 16 connections from one address: the "
   . "$closed extra ones closed at once");
close $_ for @more;
sleep 0.5;    # the server sees them closed at its next wait

(undef, $m) = metrics();
my $steps = $m->{qq(canary_sidecar_steps_total{$sp})};
ok(defined $steps, '/metrics answers beside them: steps ' . ($steps // '?'));
my $t0 = time;
note $s->ctl('resume', 'api');
$s->wait_for(sub { $s->hget('state') eq 'complete' }, 10,
             'the rollout completes while they hang')
    or $s->show_log;
note sprintf 'resume to complete: %.2fs', time - $t0;
sleep 1;
is(get('/healthz')->{status}, 200, '/healthz: 200 while they hang');
(undef, $m) = metrics();
my $more = $m->{qq(canary_sidecar_steps_total{$sp})} - $steps;
my $took = time - $t0;
# 250ms steps: a server that waited for any of them would make none
cmp_ok($more, '>=', int($took / 0.25 / 3),
       "the loop kept turning: $more steps in " . sprintf('%.1fs', $took));
is($m->{qq(canary_sidecar_decisions_total{$sp,operation="deployment_complete"})},
   1, 'decisions_total{operation="deployment_complete"}: 1');
$json = eval { decode_json(get('/status.json')->{content}) } || {};
is_deeply([map { "$_->{operation} $_->{by}" } @{$json->{receipts}}[-2, -1]],
          ['rollout_resumed operator', 'deployment_complete sidecar-a'],
          "/status.json: the operator's receipt too, read again when the "
          . 'generation moved');
unlike($s->sidecar_log, qr/reading the receipts/,
       'the receipts read without an error');

kill 'KILL', $pid;
waitpid $pid, 0;

# the idle ones are closed after 5s of nothing
my $deadline = time + 10;
my @open = @idle;
while (@open && time < $deadline) {
    @open = grep { !closed_now($_) } @open;
    sleep 0.2;
}
is(scalar @open, 0, 'idle connections closed by the server (timeout 5s)');
close $_ for @idle, $slow;

# EOF or a reset: the server closed it
sub closed_now {
    my ($sock) = @_;
    return 0 unless IO::Select->new($sock)->can_read(0);
    my $n = sysread($sock, my $buf, 4096);
    return !$n;
}

# ---- Redis down: not ready, and why; back: ready --------------------------

$t->redis_stop;
$s->wait_for(sub { get('/readyz')->{status} == 503 }, 10,
             '/readyz: 503 with Redis down');
$res = get('/readyz');
like($res->{content},
     qr/^not ready: Redis: 127\.0\.0\.1:\d+: .*(refused|closed|reset)/i,
     'and why: ' . $res->{content});
is(get('/healthz')->{status}, 200, '/healthz: still 200 (the loop turns)');
(undef, $m) = metrics();
cmp_ok($m->{qq(canary_sidecar_redis_errors_total{$sp})}, '>', 0,
       'redis_errors_total counts');
is($m->{qq(canary_sidecar_redis_up{$sp})}, 0, 'redis_up 0');

$t->redis_start;
$s->wait_for(sub { get('/readyz')->{status} == 200 }, 10,
             '/readyz: 200 with Redis back');

# the log says both changes, once each
$s->wait_for(sub { $s->sidecar_log =~ /api: redis \S+ answers again$/m }, 10,
             'the log says Redis answers again') or $s->show_log;
my @down = grep { /api: redis\b.*(unreachable|holding, retrying)/ }
           split /\n/, $s->sidecar_log;
cmp_ok(scalar @down, '>=', 1, 'and that it did not') or $s->show_log;
my @back = grep { /answers again/ } split /\n/, $s->sidecar_log;
is(scalar @back, 1, 'Redis back: one line');

$s->finish;

done_testing;
