#!/usr/bin/perl

# Story: a newcomer pipes the demo: "make demo | head", "| less" then q,
# "make demo KEEP=1 | tee demo.log" then Ctrl-C.  Whoever reads its output
# goes away first; the demo must still stop everything it started and
# remove its directory (a SIGPIPE used to kill it on the spot and leave
# Redis, both nginx, the sidecar and its traffic running).  And in a
# terminal that cannot erase (TERM=dumb: Emacs' M-x shell) it prints
# plain lines, no escape codes.  Under nohup a hang-up leaves it up.
# A process it started that dies ends it at once, named, logs kept.
# Run from another directory, the canary-ctl command it prints is one
# that works there.  Each case stops the demo within seconds of its
# start; no story is run.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CanaryTest;                 # CANARY_NO_SKIP: a skip fails in CI
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

my $demo = "$FindBin::Bin/../scripts/demo";
my $tmp = tempdir('canary-demo-pipe-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# make check runs the suite again on the sanitizer build; this file runs
# build/ only (the demo's own binaries), which make test has just run
plan skip_all => 'optional: build/ only, run by make test, not the sanitizer build' if $ENV{CANARY_CHECK};

plan skip_all => 'build first: make'
    unless -x "$FindBin::Bin/../build/canary-sidecar";

# Starts the demo, its output into a pipe, in a process group of its own
# as a shell's job; reads up to its "ports:" line.  Returns the pid, the
# read end and what the demo said: its directory and ports.
sub start_demo {
    my @args = @_;

    pipe my $r, my $w or die "pipe: $!\n";
    my $pid = fork // die "fork: $!\n";

    if ($pid == 0) {
        setpgrp(0, 0);
        chdir $tmp or die "$tmp: $!\n";     # not where the demo lives
        close $r;
        open STDOUT, '>&', $w or die "stdout: $!\n";
        exec $^X, $demo, @args or POSIX::_exit(127);
    }

    close $w;

    my ($dir, %port, $ctl);
    local $SIG{ALRM} = sub { die "no ports line from the demo\n" };
    alarm 60;

    while (my $line = <$r>) {
        $dir = $1 if $line =~ /^demo in (\S+) /;
        $ctl = $1 if $line =~ /^operate it: (\S+)/;
        if ($line =~ /^ports: (.*)/) {
            %port = map { split /=/ } split ' ', $1;
        }
        last if $ctl && %port;
    }

    alarm 0;
    return ($pid, $r, $dir, \%port, $ctl);
}

# waits for the demo's exit: its status as the shell reports it
sub wait_demo {
    my ($pid) = @_;
    my $until = time + 30;

    while (time < $until) {
        if (waitpid($pid, WNOHANG) == $pid) {
            return $? & 127 ? 'signal ' . ($? & 127) : 'exit ' . ($? >> 8);
        }
        sleep 0.05;
    }

    kill 'KILL', $pid;
    waitpid $pid, 0;
    return 'still running after 30 s';
}

# every port the demo listened on is closed: nothing it started is left
sub ports_closed {
    my ($port) = @_;
    my $until = time + 10;
    my @open;

    do {
        @open = grep { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$_",
                                             Timeout => 1) } values %$port;
        return 1 unless @open;
        sleep 0.1;
    } while (time < $until);

    diag("still listening: @open");
    return 0;
}

# what a failed case left running: the processes that name its directory
# or its Redis, and its traffic (a fork: the demo's own command line, which
# only this file runs); stopped, so that the next tests start clean
sub sweep {
    my ($dir, $port) = @_;
    my ($redis, $slow) = ($port->{redis} // 'none', $port->{slow} // 'none');

    for (`ps -eo pid=,args=`) {
        my ($pid, $args) = /^\s*(\d+)\s+(.*?)\s*$/ or next;
        kill 'KILL', $pid
            if index($args, $dir) >= 0
               || $args =~ /^redis-server 127\.0\.0\.1:$redis\b/
               || $args =~ /slow_origin\.pl $slow /
               || $args eq "$^X $demo --stay";
    }

    remove_tree($dir) if $dir =~ m{/canary-demo-\w+$};
}

# --- "| head": the reader goes, the demo goes on writing -----------------

{
    my ($pid, $r, $dir, $port, $ctl) = start_demo('--stay');
    ok($dir && -d $dir && keys %$port == 5, "the demo started in $dir");

    # it ran from another directory: its canary-ctl command works there
    ok($ctl && -x ($ctl =~ m{^/} ? $ctl : "$tmp/$ctl"),
       "the canary-ctl it prints can be run from there ($ctl)");

    close $r;
    is(wait_demo($pid), 'exit 141',
       'its reader gone, the demo ends at its next line, as SIGPIPE would');
    my ($closed, $gone) = (ports_closed($port), !-e $dir);
    ok($closed, 'but only after stopping all it started');
    ok($gone, 'and removing its directory');
    sweep($dir, $port) unless $closed && $gone;
}

# --- "| tee" and Ctrl-C: the reader and the demo interrupted at once -----

{
    my ($pid, $r, $dir, $port) = start_demo('--stay');
    ok($dir && -d $dir, "the demo started in $dir");

    # the terminal's Ctrl-C ends tee first or the demo first: tee first is
    # the case that matters, the demo's "interrupted" then has no reader
    close $r;
    kill 'INT', -$pid;
    is(wait_demo($pid), 'exit 130', 'Ctrl-C: the demo is interrupted');
    my ($closed, $gone) = (ports_closed($port), !-e $dir);
    ok($closed, 'everything it started is stopped');
    ok($gone, 'and its directory removed');
    sweep($dir, $port) unless $closed && $gone;
}

# --- a process it started dies: it says which, stops, keeps its logs ----

{
    my ($pid, $r, $dir, $port) = start_demo('--stay');

    my ($sidecar) = map { /^\s*(\d+)/ }
                    grep { /canary-sidecar .*\Q$dir\E/ } `ps -eo pid=,args=`;
    ok($sidecar, "the sidecar runs ($sidecar)");
    kill 'KILL', $sidecar;

    # well before the story's 100 s deadline, the time it took before
    my $said = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    eval {
        alarm 30;
        while (my $line = <$r>) { $said .= $line }
        alarm 0;
    };
    my $want = 'sidecar exited by itself (signal 9): the demo stops; '
               . "logs in $dir";
    like($said, qr/^\Q$want\E$/m, 'a killed sidecar: the demo says so')
        or diag($said || $@);
    is(wait_demo($pid), 'exit 1', 'and fails');
    my $closed = ports_closed($port);
    ok($closed && -f "$dir/sidecar.log",
       'all it started stopped, its logs kept');
    sweep($dir, $port);
}

# --- nohup: started with HUP ignored, it outlives the terminal ----------

{
    local $SIG{HUP} = 'IGNORE';         # what nohup does, inherited
    my ($pid, $r, $dir, $port) = start_demo('--stay');

    # SigIgn in /proc: bit 0 is SIGHUP
    open my $fh, '<', "/proc/$pid/status";
    my ($ign) = join('', <$fh>) =~ /^SigIgn:\s*([0-9a-f]+)/m;
    ok(defined $ign && hex(substr $ign, -1) & 1,
       'nohup: the demo keeps HUP ignored') or diag("SigIgn $ign");

    # the terminal closes; a line later it is all still up
    kill 'HUP', -$pid;
    my $line = <$r>;
    my @down = grep { !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$_") }
               values %$port;

    # the sidecar stops at HUP whatever it inherits, an interval later:
    # out of the terminal's process group, the hang-up does not reach it
    my ($sidecar) = grep { /canary-sidecar .*\Q$dir\E/ } `ps -eo pgid=,args=`;
    push @down, 'canary-sidecar (in the terminal\'s process group)'
        unless $sidecar && $sidecar =~ /^\s*(\d+)/ && $1 != $pid;
    ok(defined $line && $line !~ /interrupted/
       && waitpid($pid, WNOHANG) == 0 && !@down,
       'and a hang-up leaves it and all it started up')
        or diag($line // 'no line', "closed: @down");

    kill 'TERM', $pid;
    is(wait_demo($pid), 'exit 130', 'TERM then ends it as Ctrl-C does');
    my ($closed, $gone) = (ports_closed($port), !-e $dir);
    ok($closed && $gone, 'all it started stopped, its directory removed');
    sweep($dir, $port) unless $closed && $gone;
}

# --- TERM=dumb in a real terminal (script(1) gives it a pty) -------------

SKIP: {
    skip 'script(1) is not installed', 3
        unless grep { -x "$_/script" } split /:/, $ENV{PATH};

    my $raw = "$tmp/typescript";
    my $pid = fork // die "fork: $!\n";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        setpgrp(0, 0);
        exec 'script', '-qfec', "exec env TERM=dumb $^X $demo --stay", $raw
            or POSIX::_exit(127);
    }

    # up to two status lines: the live one would have been redrawn by then
    my $text = '';
    my $until = time + 60;

    my $STATUS = qr/(?<![\d.])[\d.]+s  [a-z_]+ +stage /;

    until (time > $until || (() = $text =~ /$STATUS/g) >= 2) {
        sleep 0.2;
        open my $fh, '<', $raw or next;
        local $/;
        $text = <$fh> // '';
    }

    my ($dir) = $text =~ /^demo in (\S+) /m;
    my ($ports) = $text =~ /^ports: (.*?)\r?$/m;
    my %port = map { split /=/ } split ' ', $ports // '';

    my $all = () = $text =~ /$STATUS/g;
    my $lines = () = $text =~ /^ *$STATUS[^\r\n\e]*\r?$/mg;
    ok($all >= 2 && $lines == $all,
       "TERM=dumb: the status line comes as plain lines ($lines of $all)")
        or diag($text);
    unlike($text, qr/\e/, 'and no escape code') or diag(explain($text));

    # TERM to the demo itself, script's child (it execs the command):
    # script's own TERM handler kills its child 2 s later, cleaned up or not
    my ($child) = `ps -o pid= --ppid $pid` =~ /(\d+)/;
    kill 'TERM', $child if $child;
    wait_demo($pid);
    ok(keys %port == 5 && ports_closed(\%port) && $dir && !-e $dir,
       'and TERM stops it, all it started with it')
        or $dir && sweep($dir, \%port);
}

done_testing;
