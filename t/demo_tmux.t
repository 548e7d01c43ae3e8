#!/usr/bin/perl

# Story: a newcomer runs "make demo FAULT=errors KEEP=1" in a real
# terminal.  The live status line is redrawn in place, and no banner
# (">>> the canary goes bad") or other line is glued after it, even in a
# terminal narrower than the status line.  After the story everything
# stays up: the dashboard, JSON and Prometheus URLs answer, and every
# printed command works as pasted: the curl, canary-ctl status, a weight,
# a pin, a rollback, the receipts, a reset, each seen in the proxy's
# routing.  Ctrl-C then stops everything: no process left, ports closed,
# its directory removed.
#
# The terminal is a detached tmux pane of 100x50 (the status line is
# ~150 columns), read with capture-pane -J: a wrapped line comes back
# joined, so a row left over by a wrap shows up glued too.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CanaryTest;
use Cwd qw(abs_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

# make check runs the suite again on the sanitizer build; this file runs
# build/ only (the demo's own binaries), which make test has just run
plan skip_all => 'optional: build/ only, run by make test, not the sanitizer build' if $ENV{CANARY_CHECK};

plan skip_all => 'tmux is not installed'
    unless grep { -x "$_/tmux" } split /:/, $ENV{PATH};

my $ROOT = abs_path("$FindBin::Bin/..");
my $COLS = 100;
my $tmp = tempdir('canary-demo-tmux-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sock = "$tmp/tmux.sock";
my $owner = $$;

# a private tmux server: no user configuration, a long history, the pane
# kept after the demo exits so that its exit status can be read
open my $conf, '>', "$tmp/tmux.conf" or die "$tmp/tmux.conf: $!\n";
print $conf "set -g history-limit 20000\nset -g remain-on-exit on\n";
close $conf;

sub tmux {
    my @args = @_;
    open my $fh, '-|', 'tmux', '-S', $sock, '-f', "$tmp/tmux.conf", @args
        or die "tmux: $!\n";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

# killing the server hangs up the pane: the demo's HUP handler cleans up
END { system('tmux', '-S', $sock, 'kill-server')
          if defined $owner && $$ == $owner && -S $sock }

# The pane runs the demo under a wrapper that writes its exit status:
# tmux's own #{pane_dead_status} was missing in some runs here (the demo
# a zombie tmux had not reaped 10 s later).  The wrapper ignores Ctrl-C
# (its handler is not inherited by exec): the demo gets it as it would.
open my $w, '>', "$tmp/run" or die "$tmp/run: $!\n";
print $w <<'EOF';
use POSIX ();
my $file = shift;
$SIG{INT} = $SIG{TERM} = sub {};
my $pid = fork // die "fork: $!\n";
exec @ARGV or POSIX::_exit(127) if $pid == 0;
1 until waitpid($pid, 0) == $pid;
open my $fh, '>', "$file.new" or die "$file.new: $!\n";
print $fh $? & 127 ? 'signal ' . ($? & 127) : 'exit ' . ($? >> 8), "\n";
close $fh;
rename "$file.new", $file;
EOF
close $w;

tmux('new-session', '-d', '-s', 'demo', '-x', $COLS, '-y', 50, '-c', $ROOT,
     "exec $^X $tmp/run $tmp/status scripts/demo --fault errors --stay");

my $pane_pid = tmux('display-message', '-p', '-t', 'demo', '#{pane_pid}');
chomp $pane_pid;
ok($pane_pid =~ /^\d+$/, "the demo runs in a tmux pane (pid $pane_pid)");

# the whole history, wrapped lines joined
sub capture {
    return tmux('capture-pane', '-p', '-J', '-S', '-', '-t', 'demo');
}

sub dead {
    return tmux('display-message', '-p', '-t', 'demo', '#{pane_dead}')
           =~ /^1/;
}

my $STATUS = qr/(?<![\d.])[\d.]+s  [a-z_]+ +stage \S+ +weight +\d+%  stable /;

# Lines that begin with something other than their own start: a banner,
# a decision, a command, a heading printed after a status line (or after
# its leftover wrapped row) without the line being ended first.
sub glued {
    my ($text) = @_;
    my @bad;

    for my $line (split /\n/, $text) {
        push @bad, $line
            if $line =~ /\S.*>>>/
               || $line =~ /\S.*$STATUS/
               || $line =~ /(.*)(?:decision: |demo finished|receipts \(newest
                               |everything stays up|stopping the demo
                               |interrupted)/x
                  && $1 !~ /^\s*(?:[\d.]+s\s+)?$/;
    }

    return @bad;
}

# --- the story, captured while it runs ---------------------------------

my ($text, $live, @bad, %status) = ('', 0);
my $until = time + 120;

until ($text =~ /^everything stays up until Ctrl-C/m) {
    last if dead() || time > $until;
    sleep 0.3;
    $text = capture();
    push @bad, glued($text);

    # the status line, on the screen's last line that has text: shown live
    my @lines = grep { /\S/ } split /\n/, $text;
    $live++ if @lines && $lines[-1] =~ /^\s*$STATUS/;
    $status{$_} = 1 for grep { /^\s*$STATUS/ } @lines;
}

like($text, qr/^everything stays up until Ctrl-C/m,
     'the story ends and the demo stays up') or diag($text);
like($text, qr/^>>> the canary goes bad/m, 'the fault banner was shown');
like($text, qr/^>>> the guard is armed, routing by weight again/m,
     'the story went to its end');
ok($live, "the live status line was on screen ($live captures)");
ok(!@bad, 'while it ran, every banner and line began a line of its own')
    or diag(join "\n", 'glued:', @bad);

# with room for the "^C" the terminal echoes at Ctrl-C
my @wide = grep { length > $COLS - 3 } keys %status;
ok(%status && !@wide, "the status line fits the $COLS-column terminal")
    or diag(join "\n", @wide);

# --- what it printed, used as printed ------------------------------------

my ($dashboard) = $text =~ m{^  dashboard   (http://\S+)$}m;
my ($json) = $text =~ m{^  JSON        (http://\S+)$}m;
my ($prom) = $text =~ m{^  Prometheus  (http://\S+)$}m;
my ($curl) = $text =~ m{^    (curl .*\S)\s*$}m;
my %ctl = map { (split ' ', $_)[3] => $_ }
          $text =~ m{^    (scripts/canary-ctl --redis \S+ .*\S)\s*$}mg;
my ($dir) = $text =~ /^demo in (\S+) /m;

ok($dashboard && $json && $prom && $curl, 'it printed the URLs and a curl');
is_deeply([sort keys %ctl],
          [sort qw(status set-weight pin rollback receipts reset)],
          'and canary-ctl commands for status, a weight, a pin, a '
          . 'rollback, the receipts and a reset');

# everything the demo runs now, and the ports it listens on
sub processes {
    my %p;

    for (`ps -eo pid=,ppid=,args=`) {
        my ($pid, $ppid, $args) = /^\s*(\d+)\s+(\d+)\s+(.*?)\s*$/ or next;
        $p{$pid} = [$ppid, $args];
    }

    return \%p;
}

my $procs = processes();
my %tree = ($pane_pid => $procs->{$pane_pid}[1]);

for (1 .. 5) {
    for my $pid (keys %$procs) {
        $tree{$pid} = $procs->{$pid}[1] if $tree{$procs->{$pid}[0]};
    }
}

my %ports;

# the proxy and the origins from their configurations, Redis from the
# commands, the slow origin from its command line
for my $conf ("$dir/nginx.conf", "$dir/origins.conf") {
    open my $fh, '<', $conf or next;

    while (<$fh>) {
        $ports{$1} = 1 if /^\s*listen 127\.0\.0\.1:(\d+)/;
    }
}

$ports{$1} = 1 if ($ctl{status} // '') =~ /--redis 127\.0\.0\.1:(\d+)/;
/slow_origin\.pl (\d+)/ and $ports{$1} = 1 for values %tree;

my %kinds = ('redis-server'         => [1, qr/^redis-server /],
             'slow origin'          => [1, qr{slow_origin\.pl }],
             'nginx master'         => [2, qr/^nginx: master process /],
             'nginx worker'         => [5, qr/^nginx: worker process/],
             'demo and its traffic' => [2, qr{^\S*perl scripts/demo --f}]);
my @missing = grep { my ($n, $re) = @{ $kinds{$_} };
                     (grep { /$re/ } values %tree) < $n } sort keys %kinds;
ok(!@missing, 'the snapshot has every kind of process the demo runs')
    or diag("missing: @missing\n", explain(\%tree));
is(scalar keys %ports, 5, 'and its five ports')
    or diag(explain(\%ports, \%tree));

my $http = HTTP::Tiny->new(timeout => 5);

my $r = $http->get($dashboard);
ok($r->{success} && $r->{headers}{'content-type'} =~ m{text/html}
   && $r->{content} =~ /<html/i, 'the dashboard URL serves the page')
    or diag("$r->{status} $r->{headers}{'content-type'}");

sub split_status {
    my $r = $http->get($json);
    return $r->{success} ? decode_json($r->{content})->{splits}{api} : undef;
}

my $s = split_status();
is($s && $s->{state}, 'ready', 'the JSON URL answers: split api is ready');

$r = $http->get($prom);
like($r->{content}, qr/^canary_\w+\{[^}]*split="api"/m,
     'the Prometheus URL answers with the split\'s metrics');

# runs a printed command from where the demo ran, as a shell would
sub run {
    my ($cmd) = @_;
    my $out = `cd '$ROOT' && $cmd 2>&1`;
    return ($? >> 8, $out);
}

# polls until the test passes (the proxy reads Redis every 500 ms)
sub eventually {
    my ($test) = @_;
    my $until = time + 10;

    until ($test->()) {
        return 0 if time > $until;
        sleep 0.1;
    }

    return 1;
}

sub where {
    my ($rc, $out) = run($curl);
    my ($v) = $out =~ /^X-Canary-Variant: (\S+)/mi;
    my ($why) = $out =~ /^X-Canary-Reason: (\S+)/mi;
    return $rc == 0 && $out =~ m{^HTTP/1\.1 200 } ? "$v ($why)" : "rc $rc";
}

is(where(), 'stable (hash)', "the curl: at weight 0 the tenant is on stable");

my ($rc, $out) = run($ctl{status});
ok($rc == 0 && $out =~ /\bapi\b/ && $out =~ /\bready\b/,
   'canary-ctl status works') or diag("rc $rc: $out");

($rc, $out) = run($ctl{'set-weight'});
is($rc, 0, 'canary-ctl set-weight works') or diag($out);
ok(eventually(sub { ((split_status() // {})->{weight} // -1) == 20 }),
   'and the proxy routes 20%');

# at 20% the tenant's bucket is on stable, so the pin is what moves it
is(where(), 'stable (hash)', 'the tenant is still on stable by its hash');
($rc, $out) = run($ctl{pin});
is($rc, 0, 'canary-ctl pin works') or diag($out);
ok(eventually(sub { where() eq 'canary (pin)' }),
   'and the curl shows the tenant pinned to canary') or diag(where());

($rc, $out) = run($ctl{rollback});
is($rc, 0, 'canary-ctl rollback works') or diag($out);
ok(eventually(sub { where() eq 'stable (rolled_back)' }),
   'and the curl shows the pinned tenant back on stable') or diag(where());
is(split_status()->{state}, 'rolled_back', 'the split is rolled back');

($rc, $out) = run($ctl{receipts});
ok($rc == 0 && $out =~ /rollback_executed/ && $out =~ /tenants_pinned/
   && $out =~ /weight_set/, 'canary-ctl receipts shows what was done')
    or diag("rc $rc: $out");

($rc, $out) = run($ctl{reset});
is($rc, 0, 'canary-ctl reset works') or diag($out);
ok(eventually(sub { ((split_status() // {})->{state} // '') eq 'ready' }),
   'and the split is ready again');

# still redrawing its status line, still nothing glued
sleep 1;
$text = capture();
ok(!glued($text), 'while it stays, nothing is glued either')
    or diag(join "\n", 'glued:', glued($text));
ok(!dead(), 'the demo is still up');

# --- Ctrl-C ------------------------------------------------------------

tmux('send-keys', '-t', 'demo', 'C-c');
ok(eventually(sub { -e "$tmp/status" }), 'Ctrl-C ends the demo');
open my $fh, '<', "$tmp/status";
is($fh && <$fh>, "exit 0\n", 'with status 0: leaving --stay is no failure');

$text = capture();
like($text, qr/^stopping the demo$/m, 'it says it stops');
unlike($text, qr/^\s*$STATUS.*\n+stopping the demo$/m,
       'its status line cleared first, with the "^C" the terminal echoed');
unlike($text, qr/^interrupted$/m, 'once (not its traffic child too)');
ok(!glued($text), 'and nothing is glued at the end')
    or diag(join "\n", 'glued:', glued($text));

my $now = processes();
my @left = map { "$_ $tree{$_}" }
           grep { $now->{$_} && $now->{$_}[1] eq $tree{$_} } sort keys %tree;
ok(!@left, 'no process left behind') or diag(join "\n", @left);

my @open = grep { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$_",
                                        Timeout => 1) } sort keys %ports;
ok(keys %ports && !@open, 'its ports are closed') or diag("open: @open");
ok($dir && !-e $dir, "its directory is removed ($dir)");

done_testing;
