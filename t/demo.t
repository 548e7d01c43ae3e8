#!/usr/bin/perl

# Story: a new user types "make demo" and sees the product work end to
# end: a healthy canary walks every stage to 100%; with FAULT=errors the
# sidecar rolls it back (every request on stable, an opt-in too), the
# operator acknowledges with "canary-ctl reset" (routing by weight again)
# and sets 50%; with the sidecar stopped the guard pulls the broken
# canary, set-weight is refused, and another reset re-arms the guard.
# The demo stops everything it started and leaves no file behind, so it
# can run twice in a row.

use strict;
use warnings;

use FindBin;
use File::Temp qw(tempfile);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

# make check runs the suite again on the sanitizer build; this file runs
# build/ only (the demo's own binaries), which make test has just run
plan skip_all => 'optional: build/ only, run by make test, not the sanitizer build' if $ENV{CANARY_CHECK};

my $demo = "$FindBin::Bin/../scripts/demo";

# what the demo starts: Redis, the slow origin, two nginx masters with 4 + 1
# workers, the sidecar, and its own fork, the traffic generator
my %want = ('redis-server'   => [1, qr/^redis-server /],
            'slow origin'    => [1, qr{t/lib/slow_origin\.pl }],
            'nginx master'   => [2, qr/^nginx: master process /],
            'nginx worker'   => [5, qr/^nginx: worker process/],
            'canary-sidecar' => [1, qr{build/canary-sidecar }],
            'traffic'        => [1, qr{scripts/demo --batch}]);

# pid => [ppid, args] of every process
sub processes {
    my %p;

    for (`ps -eo pid=,ppid=,args=`) {
        my ($pid, $ppid, $args) = /^\s*(\d+)\s+(\d+)\s+(.*?)\s*$/ or next;
        $p{$pid} = [$ppid, $args];
    }

    return \%p;
}

# pid => args of $root's descendants in a snapshot
sub descendants {
    my ($procs, $root) = @_;
    my %tree;
    my %in = ($root => 1);
    my $grew = 1;

    while ($grew) {
        $grew = 0;

        for my $pid (keys %$procs) {
            next if $in{$pid} || !$in{$procs->{$pid}[0]};
            $in{$pid} = $grew = 1;
            $tree{$pid} = $procs->{$pid}[1];
        }
    }

    return \%tree;
}

sub slurp {
    open my $fh, '<', $_[0] or return '';
    local $/;
    return <$fh>;
}

# Runs the demo with its output in a file (a leftover child holding a pipe
# would hang the test), and takes a snapshot of its process tree once its
# first status line shows everything is up.
sub run_demo {
    my (%env) = @_;
    my (undef, $file) = tempfile('canary-demo-t-XXXXXX', TMPDIR => 1,
                                 UNLINK => 1);
    my $before = processes();

    my $pid = fork // die "fork: $!\n";

    if ($pid == 0) {
        @ENV{keys %env} = values %env;
        open STDOUT, '>', $file or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec $demo, '--batch' or POSIX::_exit(127);
    }

    my ($tree, $deadline) = (undef, time + 180);

    while (waitpid($pid, WNOHANG) == 0) {
        if (!$tree && slurp($file) =~ /^ *[\d.]+s  \S+ +stage /m) {
            sleep 0.5;          # nginx forks its workers after listening
            $tree = descendants(processes(), $pid);
        }

        if (time > $deadline) {
            diag('the demo took too long: stopping it');
            kill 'TERM', $pid;
            $deadline = time + 30;
        }

        sleep 0.2;
    }

    return { status => $?, out => slurp($file), tree => $tree || {},
             before => $before };
}

# Every process the demo started is gone, no new one of its kinds is
# around, and its ports are closed.
sub nothing_left {
    my ($run, $what) = @_;
    my $tree = $run->{tree};
    my %ports = $run->{out} =~ /^ports: (.*)$/m ? $1 =~ /(\w+)=(\d+)/g : ();
    my ($dir) = $run->{out} =~ /^demo in (\S+) /m;

    # the net is real: it caught what the demo runs
    my @missed;

    for my $kind (sort keys %want) {
        my ($n, $re) = @{ $want{$kind} };
        my $seen = grep { /$re/ } values %$tree;
        push @missed, "$kind ($seen of $n)" if $seen < $n;
    }

    ok(!@missed, "$what: the snapshot of the demo's processes has them all")
        or diag("missed: @missed\n", explain($tree));

    # by pid and command line, so a reused pid is no false alarm
    my $now = processes();
    my @left = map { "$_ $tree->{$_}" }
               grep { $now->{$_} && $now->{$_}[1] eq $tree->{$_} }
               sort keys %$tree;

    # and anything new of the demo's kinds naming its ports or directory,
    # including what it may have started after the snapshot
    my $ours = join '|', map { quotemeta } grep { defined }
                         $dir, values %ports;
    my @new = map { "$_ $now->{$_}[1]" }
              grep { !$run->{before}{$_} && !$tree->{$_}
                     && $now->{$_}[1] =~ /redis-server|redis-cli|nginx|
                                          scripts\/demo|slow_origin|
                                          canary-sidecar|canary-ctl/x
                     && $now->{$_}[1] =~ /$ours/ }
              sort keys %$now;

    ok(!@left && !@new, "$what: no process left behind")
        or diag(join "\n", 'still running:', @left, @new);

    my @open = grep {
        IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ports{$_}",
                              Timeout => 1)
    } sort keys %ports;

    ok(keys %ports && !@open, "$what: its ports are closed")
        or diag('ports: ' . join(' ', map { "$_=$ports{$_}" } sort keys %ports)
                . '; still open: ' . "@open");

    ok($dir && !-e $dir, "$what: its directory is removed")
        or diag("directory: " . ($dir // '?'));
}

# one pattern of several, each with its own flags
sub re {
    my $s = join '', @_;
    return qr/$s/;
}

my $run = run_demo();
my $out = $run->{out};
is($run->{status}, 0, 'the healthy demo exits 0') or diag($out);
like($out, qr/decision: deployment_complete/, 'it reached deployment_complete');
like($out, qr/the canary reached 100%/, 'and says so');
like($out, qr{dashboard: http://127\.0\.0\.1:\d+/canary_status\?format=html},
     'it shows the dashboard URL');
like($out, qr/^ *[\d.]+s  running +stage 20_percent +weight /m,
     "its status line shows the sidecar's stage");
like($out, qr/receipts \(newest first\):\n.*deployment_complete/s,
     'it prints the receipts');
my ($secs) = $out =~ /reached 100% in (\d+)s/;
ok($secs && $secs < 120, "in under two minutes (${\ ($secs // '?')} s)");

nothing_left($run, 'healthy');

$run = run_demo(FAULT => 'errors');
$out = $run->{out};
is($run->{status}, 0, 'the FAULT=errors demo exits 0') or diag($out);
like($out, qr/decision: sli_violation_detected/, 'a violation was detected');
like($out, qr/decision: rollback_executed/, 'the sidecar rolled back');
like($out, re(qr/the sidecar rolled the canary back: weight 0, state /,
              qr/rolled_back\n(?:.*\n)*?>>> every request on stable: /,
              qr/opt-in -> stable \(rolled_back\), /),
     'after the rollback an opt-in goes to stable, by rolled_back');
like($out, re(qr/^    \$ canary-ctl reset api --reason 'v2 fixed'\n/m,
              qr/    reset api: state \S+ -> ready, weight \S+ -> 0% .*\n/,
              qr/      state ready, weight 0/),
     'the operator resets the split with canary-ctl');
like($out, qr/^      pins that stay on canary \(yours\): \d+$/m,
     "reset lists the operator's pins that stay");
like($out, qr/^>>> routing by weight again: opt-in -> canary \(header\)/m,
     'after the reset the opt-in reaches canary again');
like($out, re(qr/^    \$ canary-ctl set-weight api 50\n/m,
              qr/    weight api: \S+ -> 50% \(generation \d+\)/),
     "then the operator's weight");
like($out, qr/^>>> at 50%: .*tenant-qa-1 -> canary \(hash\)/m,
     'at 50% a tenant goes to canary by the hash');
like($out, qr/the guard pulled the canary ([\d.]+)s after it broke/,
     'then the guard pulled it with the sidecar stopped');
like($out, qr/^    canary-ctl: api: guard tripped: canary-ctl reset first$/m,
     'set-weight is refused while the guard is tripped');
like($out, re(qr/^>>> the guard is armed, routing by weight again: /m,
              qr/opt-in -> canary \(header\)/),
     'another reset re-arms the guard');
like($out, qr/rollback_executed.*reset\ api:.*weight\ api:.*guard\ pulled.*
               reset\ first.*guard\ is\ armed/sx,
     'in that order');
my ($guard) = $out =~ /the guard pulled the canary ([\d.]+)s/;
note("guard pulled the canary ${\ ($guard // '?')}s after the fault");

nothing_left($run, 'FAULT=errors');

done_testing;
