#!/usr/bin/perl

# Story: Redis listens on a unix socket (unix:/path) and wants a
# password, as on a host where nginx, Redis and the sidecar sit together.
#
#   - nginx (2 workers, unprivileged) syncs its weights over the socket,
#     with password_file=;
#   - canary-ctl --redis unix:PATH --password-file F writes a weight that
#     nginx routes with;
#   - canary-sidecar --redis unix:PATH --redis-password-file F reads the
#     split and decides (a dry run, once);
#   - canary-ctl never puts the password on a command line: while it
#     runs (Redis held with SIGSTOP, so that its redis-cli waits for the
#     answer), no process's /proc/PID/cmdline holds the password; its
#     redis-cli was seen meanwhile.  The same over TCP.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(_exit WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $PASSWORD = 'Unix-' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 20;
my $SIDECAR = $ENV{CANARY_SIDECAR} || "$CanaryTest::ROOT/build/canary-sidecar";

my $t = CanaryTest->new;
my $sock = $t->prefix . '/redis.sock';
my $pw_file = $t->prefix . '/redis.pass';

write_file($pw_file, "$PASSWORD\n");

# the harness waits for PING without a password: lock it after
my $tcp = '127.0.0.1:' . $t->redis_start('--unixsocket', $sock,
                                          '--unixsocketperm', '777');
$t->redis_cli('CONFIG', 'SET', 'requirepass', $PASSWORD);

ok -S $sock, "Redis listens on $sock";

$t->write_conf(redis_split_conf($t, weight => 5,
                   redis => "unix:$sock password_file=$pw_file "
                            . 'interval=200ms timeout=300ms'),
               workers => 2);
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes("unix:$sock", 'app', 1, ctl => [ '--password-file', $pw_file ]),
    'nginx reports split app';

# ---- helpers ---------------------------------------------------------------

sub ctl {
    my ($redis, @args) = @_;

    return canary_ctl($redis, '--password-file', $pw_file, @args);
}

# every process's command line that holds the password; the command lines
# of the redis-cli processes seen (proof that it ran while we looked)
sub scan {
    my (%seen) = @_;

    my @leaks;

    opendir my $dh, '/proc' or die "/proc: $!";

    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/cmdline" or next;
        my $cmd = do { local $/; <$fh> } // '';
        close $fh;

        (my $shown = $cmd) =~ tr/\0/ /;

        push @leaks, "$pid: $shown" if index($cmd, $PASSWORD) >= 0;
        $seen{$pid} = $shown if $cmd =~ /^redis-cli\0/;
    }

    closedir $dh;

    return (\@leaks, \%seen);
}

# ---- nginx over the socket ---------------------------------------------------

ok wait_until(5, sub { my $s = status_json($t);
                       $s && $s->{redis}{connected} }),
    'nginx connects over the socket, with the password';
is status_json($t)->{redis}{address}, "unix:$sock",
    'status: the address is the socket';

my ($rc, $out) = ctl("unix:$sock", 'set-weight', 'app', 40);
is $rc, 0, 'canary-ctl --redis unix:PATH set-weight app 40' or diag $out;
ok wait_until(3, sub { weight_of($t) eq '40' }), 'nginx routes at 40';

# ---- the sidecar over the socket -------------------------------------------

SKIP: {
    skip "$SIDECAR is not built", 2 unless -x $SIDECAR;

    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec $SIDECAR, '--redis', "unix:$sock", '--redis-password-file',
             $pw_file, '--split', 'app', '--status',
             'http://127.0.0.1:' . $t->port('http') . '/canary_status',
             '--plan', "$CanaryTest::ROOT/conf-examples/plan-default.json",
             '--once', '--dry-run'
            or _exit(127);
    }

    my $log = do { local $/; <$fh> } // '';
    close $fh;

    is $?, 0, 'canary-sidecar --redis unix:PATH: one step, exit 0'
        or diag $log;
    like $log, qr/\[dry run\] app: start: stage /,
        'it read Redis and nginx and decided' or diag $log;
}

# ---- the password on no command line -----------------------------------------

my ($redis_pid) = grep { $_ }
    map { /process_id:(\d+)/ ? $1 : () }
    do { local $ENV{REDISCLI_AUTH} = $PASSWORD;
         $t->redis_cli('--no-auth-warning', 'INFO', 'server') };
ok $redis_pid, "redis-server is pid $redis_pid";

my $weight = 50;

for my $redis ("unix:$sock", $tcp) {
    kill 'STOP', $redis_pid;

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        # forced: nginx's records may expire while Redis is stopped
        my ($rc) = ctl($redis, 'set-weight', 'app', $weight, '--force');
        _exit($rc);
    }

    # look until its redis-cli has been seen a while, or it is done
    my (@leaks, %seen);
    my ($t0, $first_seen) = (time);

    while (time - $t0 < 5 && waitpid($pid, WNOHANG) == 0) {
        my ($leaks, $seen) = scan(%seen);
        push @leaks, @$leaks;
        %seen = %$seen;
        $first_seen //= time if %seen;
        last if $first_seen && time - $first_seen > 0.5;
        sleep 0.01;
    }

    kill 'CONT', $redis_pid;
    waitpid $pid, 0;
    my $st = $?;

    ok scalar(keys %seen), "$redis: canary-ctl's redis-cli was seen "
        . 'while it waited for Redis: '
        . join(' | ', map { substr($_, 0, 50) . '...' } values %seen);
    is scalar(@leaks), 0, "$redis: the password is on no command line"
        or diag join "\n", @leaks;
    is $st, 0, "$redis: canary-ctl set-weight app $weight exits 0 once "
        . 'Redis answers';
    ok wait_until(3, sub { weight_of($t) eq $weight }),
        "nginx routes at $weight";

    $weight++;
}

$t->stop;

done_testing;
