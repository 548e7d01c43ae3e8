package Bench;

# Helpers for bench/run: one temp dir, free loopback ports, child processes
# that are always stopped (END block and signal handlers: the Perl form of
# a shell trap), nginx instances from the bench/*.conf templates, small
# HTTP/1.1 keep-alive clients and the statistics the report uses.
#
# Core Perl only.

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno qw(EINTR EAGAIN);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG setpgid _exit);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep time);

our $BENCH = abs_path(dirname(__FILE__) . '/..');
our $ROOT = abs_path("$BENCH/..");
our $NGINX = $ENV{BENCH_NGINX} || '/usr/sbin/nginx';
our $TMP;                   # the run's temp dir
our $VERBOSE = $ENV{BENCH_VERBOSE} // 0;

my %PROCS;                  # pid -> { name, pgid }
my %PORTS;                  # ports handed out in this run
my $OWNER = $$;             # forked children never clean up

$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub { die "bench: killed by SIG$_[0]\n" };
$SIG{PIPE} = 'IGNORE';


sub init_tmp {
    my $base = $ENV{TMPDIR} || '/tmp';

    $TMP = tempdir('canary-bench-XXXXXX', DIR => $base,
                   CLEANUP => !$ENV{BENCH_KEEP});

    # nginx workers run as nobody when we are root: they stat fault files
    chmod 0755, $TMP;

    return $TMP;
}


sub log_msg {
    my ($fmt, @args) = @_;

    my @t = localtime;
    printf STDERR "[%02d:%02d:%02d] $fmt\n", @t[2, 1, 0], @args;
}


sub debug {
    log_msg(@_) if $VERBOSE;
}


# ---- ports -----------------------------------------------------------------

# a free loopback TCP port below the ephemeral range, never the same twice
sub port {
    for (1 .. 1000) {
        my $p = 20000 + int(rand(12000));
        next if $PORTS{$p};

        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $p, Proto => 'tcp',
                                      Listen => 1, ReuseAddr => 0)
            or next;
        close $s;

        $PORTS{$p} = 1;
        return $p;
    }

    die "bench: no free loopback port\n";
}


sub can_connect {
    my ($port, $host) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => $host || '127.0.0.1',
                                  PeerPort => $port, Proto => 'tcp',
                                  Timeout => 1)
        or return 0;
    close $s;

    return 1;
}


sub wait_port {
    my ($port, $seconds, $pid) = @_;

    my $deadline = time + $seconds;

    until (can_connect($port)) {
        die "bench: process $pid died before port $port opened\n"
            if $pid && !alive($pid);
        die "bench: nothing accepts on 127.0.0.1:$port after ${seconds}s\n"
            if time > $deadline;
        sleep 0.02;
    }
}


# ---- processes -------------------------------------------------------------

# starts a command in its own process group; returns its pid.
# opts: out (file for stdout+stderr), env (hash), cpus ("0", "1", "0,1")
sub spawn {
    my ($name, $cmd, %o) = @_;

    my @cmd = @$cmd;

    if (defined $o{cpus} && length $o{cpus}) {
        unshift @cmd, 'taskset', '-c', $o{cpus};
    }

    my $pid = fork // die "bench: fork: $!\n";

    if ($pid == 0) {
        setpgid(0, 0);
        $SIG{INT} = $SIG{TERM} = $SIG{HUP} = 'DEFAULT';
        $SIG{PIPE} = 'DEFAULT';
        open STDIN, '<', '/dev/null';
        if ($o{out}) {
            open STDOUT, '>>', $o{out} or _exit(126);
            open STDERR, '>&', \*STDOUT;
        }
        @ENV{keys %{$o{env}}} = values %{$o{env}} if $o{env};
        exec @cmd or _exit(127);
    }

    setpgid($pid, $pid);
    $PROCS{$pid} = { name => $name, pgid => $pid };
    debug("started %s (pid %d): %s", $name, $pid, "@cmd");

    return $pid;
}


# runs Perl code in a forked child of its own process group (stopped at
# the end like any other process); returns its pid
sub fork_code {
    my ($name, $code) = @_;

    my $pid = fork // die "bench: fork: $!\n";

    if ($pid == 0) {
        setpgid(0, 0);
        $SIG{INT} = $SIG{TERM} = $SIG{HUP} = 'DEFAULT';
        open STDIN, '<', '/dev/null';
        eval { $code->() };
        print STDERR "bench: $name: $@" if $@;
        _exit($@ ? 1 : 0);
    }

    setpgid($pid, $pid);
    $PROCS{$pid} = { name => $name, pgid => $pid };

    return $pid;
}


sub alive {
    my ($pid) = @_;

    return 0 unless $pid;

    my $r = waitpid($pid, WNOHANG);
    return 0 if $r == $pid || $r == -1;

    return kill(0, $pid) ? 1 : 0;
}


# signal, wait up to $grace seconds, then KILL the whole process group
sub stop_proc {
    my ($pid, $sig, $grace) = @_;

    return unless $pid && $PROCS{$pid};

    my $p = delete $PROCS{$pid};
    $grace //= 10;

    kill($sig || 'TERM', $pid);

    my $deadline = time + $grace;

    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        last if $r == $pid || $r == -1;
        sleep 0.02;
    }

    # whatever is left in the group (workers of a killed master, say)
    if (kill(0, -$p->{pgid})) {
        kill('KILL', -$p->{pgid});
        waitpid($pid, 0);
    }
}


# a process that was reaped by the caller: stop tracking it, and end
# whatever it left in its process group
sub forget {
    my ($pid) = @_;

    my $p = delete $PROCS{$pid} or return;

    kill('KILL', -$p->{pgid}) if kill(0, -$p->{pgid});
}


# pins running processes (every thread) to CPUS ("0", "1", "0-1")
sub set_cpus {
    my ($cpus, @pids) = @_;

    for my $pid (grep { $_ } @pids) {
        my ($rc, $out) = run_cmd(['taskset', '-a', '-p', '-c', $cpus, $pid],
                                 name => 'taskset');
        die "bench: taskset -a -p -c $cpus $pid: $out\n" if $rc;
    }
}


# runs a command to completion; returns (exit code, output)
sub run_cmd {
    my ($cmd, %o) = @_;

    my $out = "$TMP/cmd.$$." . int(rand(1e9)) . '.out';
    my $pid = spawn($o{name} || $cmd->[0], $cmd, %o, out => $out);

    waitpid($pid, 0);
    my $rc = $? >> 8 | ($? & 127);
    delete $PROCS{$pid};

    kill('KILL', -$pid) if kill(0, -$pid);

    my $text = slurp($out) // '';
    unlink $out;

    return ($rc, $text);
}


sub cleanup {
    return unless $$ == $OWNER;

    for my $pid (sort { $b <=> $a } keys %PROCS) {
        debug("stopping %s (pid %d)", $PROCS{$pid}{name}, $pid);
        stop_proc($pid, 'TERM', 5);
    }
}


END {
    local $?;
    cleanup();
}


# ---- files -----------------------------------------------------------------

sub slurp {
    my ($path) = @_;

    open my $fh, '<', $path or return undef;
    local $/;
    my $text = <$fh>;
    close $fh;

    return $text;
}


sub spew {
    my ($path, $text) = @_;

    make_path(dirname($path));
    open my $fh, '>', $path or die "bench: write $path: $!\n";
    print $fh $text;
    close $fh or die "bench: write $path: $!\n";
}


# bench/NAME with every @@KEY@@ replaced; an unknown key is an error
sub template {
    my ($name, %vars) = @_;

    my $text = slurp("$BENCH/$name") // die "bench: no template $name\n";

    $text =~ s/\@\@([A-Z0-9_]+)\@\@/
        defined $vars{$1} ? $vars{$1}
                          : die "bench: $name: no value for \@\@$1\@\@\n"/ge;

    return $text;
}


# ---- nginx -----------------------------------------------------------------

# Bench::nginx(name => ..., conf => TEXT, ports => [...], cpus => "0")
sub nginx {
    my (%o) = @_;

    my $dir = "$TMP/$o{name}";
    make_path("$dir/tmp", "$dir/logs");
    chmod 0755, $dir;

    spew("$dir/nginx.conf", $o{conf});

    my $self = bless { %o, dir => $dir }, 'Bench::Nginx';

    return $self;
}


# the main-context lines every instance shares (a template, bench/main.conf)
sub main_conf {
    my (%o) = @_;

    my @load;

    for my $m (@{$o{modules} || []}) {
        push @load, "load_module $m;";
    }

    my $user = $> == 0 ? 'user nobody nogroup;' : '';

    return template('main.conf',
        LOAD_MODULES => join("\n", @load),
        USER         => $user,
        WORKERS      => $o{workers} // 1,
        MASTER       => $o{single} ? 'off' : 'on',
        DIR          => $o{dir},
        EXTRA_MAIN   => $o{extra_main} // '',
        HTTP         => $o{http});
}


package Bench::Nginx;

use Time::HiRes qw(sleep time);

sub dir       { $_[0]{dir} }
sub conf_path { "$_[0]{dir}/nginx.conf" }
sub error_log { "$_[0]{dir}/logs/error.log" }

sub cmd {
    my ($self, @args) = @_;

    return ($Bench::NGINX, '-p', "$self->{dir}/", '-c', $self->conf_path,
            '-e', $self->error_log, @args);
}


sub test_conf {
    my ($self) = @_;

    my ($rc, $out) = Bench::run_cmd([$self->cmd('-t')], name => 'nginx -t');

    return ($rc == 0, $out);
}


sub start {
    my ($self, %o) = @_;

    my @cmd = $self->cmd;
    unshift @cmd, @{$o{wrap}} if $o{wrap};

    $self->{pid} = Bench::spawn("nginx $self->{name}", \@cmd,
                                out => "$self->{dir}/logs/stderr.log",
                                cpus => $self->{cpus});

    for my $p (@{$self->{ports} || []}) {
        eval { Bench::wait_port($p, $o{timeout} || 15, $self->{pid}) };
        if ($@) {
            my $log = Bench::slurp($self->error_log) // '';
            my $err = Bench::slurp("$self->{dir}/logs/stderr.log") // '';
            die "bench: nginx $self->{name} did not start: $@$log$err";
        }
    }

    my $want = $self->{workers} // 0;
    my $deadline = time + 10;

    while ($want && $self->worker_pids < $want) {
        die "bench: nginx $self->{name}: fewer than $want workers\n"
            if time > $deadline;
        sleep 0.02;
    }

    return $self;
}


sub pid { $_[0]{pid} }


sub worker_pids {
    my ($self) = @_;

    return () unless $self->{pid};

    my @pids;

    for my $stat (glob "/proc/[0-9]*/stat") {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        close $fh;
        # pid (comm) state ppid
        my ($pid, $comm, $ppid) = $line =~ /^(\d+) \((.*)\) \S (\d+)/s
            or next;
        next unless $ppid == $self->{pid} && $comm eq 'nginx';

        my $cmdline = Bench::slurp("/proc/$pid/cmdline") // '';
        push @pids, $pid if $cmdline =~ /worker process/
                            && $cmdline !~ /shutting down/;
    }

    @pids = sort { $a <=> $b } @pids;

    return @pids;
}


# graceful (QUIT) by default; TERM is the fast stop
sub stop {
    my ($self, $sig, $grace) = @_;

    return unless $self->{pid};

    Bench::stop_proc($self->{pid}, $sig || 'QUIT', $grace // 15);
    $self->{pid} = undef;
}


# [alert], [crit], [emerg] lines of the error log
sub bad_log_lines {
    my ($self) = @_;

    my $log = Bench::slurp($self->error_log) // '';

    return grep { /\[(alert|crit|emerg)\]/ } split /\n/, $log;
}


package Bench;

# ---- HTTP ------------------------------------------------------------------

sub connect_tcp {
    my ($port) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or return undef;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $s;

    return $s;
}


sub http_request_text {
    my ($path, $headers) = @_;

    my $req = "GET $path HTTP/1.1\r\nHost: bench\r\n";

    for (my $i = 0; $i < @{$headers || []}; $i += 2) {
        $req .= "$headers->[$i]: $headers->[$i + 1]\r\n";
    }

    return "$req\r\n";
}


# reads one response from a keep-alive socket; buffer in $$buf.
# returns { status, headers (lowercase => value), body } or undef
sub read_response {
    my ($s, $buf, $timeout) = @_;

    my $deadline = time + ($timeout || 10);
    my $sel = IO::Select->new($s);

    for (;;) {
        if ($$buf =~ /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n/s) {
            my ($status, $head, $hl) = ($1, $2, $+[0]);
            my %h;
            for my $line (split /\r\n/, $head) {
                $h{lc $1} = $2 if $line =~ /^([^:]+):\s*(.*)$/;
            }

            my $len = $h{'content-length'};

            if (defined $len) {
                if (length($$buf) >= $hl + $len) {
                    my $body = substr($$buf, $hl, $len);
                    substr($$buf, 0, $hl + $len) = '';
                    return { status => $status, headers => \%h,
                             body => $body };
                }
            } elsif (($h{'transfer-encoding'} // '') !~ /chunked/i) {
                substr($$buf, 0, $hl) = '';
                return { status => $status, headers => \%h, body => '' };
            } elsif ($$buf =~ /\r\n0\r\n\r\n/s) {
                my $end = $+[0];
                my $body = substr($$buf, $hl, $end - $hl);
                substr($$buf, 0, $end) = '';
                return { status => $status, headers => \%h, body => $body };
            }
        }

        my $left = $deadline - time;
        return undef if $left <= 0;
        next unless $sel->can_read($left);

        my $n = sysread($s, $$buf, 65536, length $$buf);
        next if !defined $n && ($! == EINTR || $! == EAGAIN);
        return undef unless $n;
    }
}


# one request on a new connection; returns the response hash or undef
sub http_get {
    my ($port, $path, $headers, $timeout) = @_;

    my $s = connect_tcp($port) or return undef;
    my $buf = '';

    syswrite($s, http_request_text($path, [@{$headers || []},
                                           Connection => 'close']));
    my $r = read_response($s, \$buf, $timeout || 5);
    close $s;

    return $r;
}


# ---- redis -----------------------------------------------------------------

# a redis-server of our own on a free loopback port, no persistence
sub redis_start {
    my ($name) = @_;

    my $port = port();
    my $dir = "$TMP/$name";
    make_path($dir);

    my $pid = spawn($name, ['redis-server', '--port', $port, '--bind',
                            '127.0.0.1', '--save', '', '--appendonly', 'no',
                            '--dir', $dir, '--daemonize', 'no'],
                    out => "$dir/redis.log");

    my $deadline = time + 10;

    until ((redis_cli($port, 'PING'))[1] =~ /PONG/) {
        die "bench: redis-server did not start:\n"
            . (slurp("$dir/redis.log") // '') if time > $deadline
                                                  || !alive($pid);
        sleep 0.05;
    }

    return { port => $port, pid => $pid, name => $name };
}


sub redis_stop {
    my ($r) = @_;

    stop_proc($r->{pid}, 'TERM', 5);
}


# returns (exit code, output)
sub redis_cli {
    my ($port, @args) = @_;

    return run_cmd(['redis-cli', '-h', '127.0.0.1', '-p', $port, @args],
                   name => 'redis-cli');
}


# ---- the request mix ------------------------------------------------------

# The same mix for wrk (bench/tenants.lua reads the file) and for the
# callgrind client: request i carries X-Tenant-Id tenant-<i>, and a few
# carry an override: X-Canary always (1 in 50), X-Canary never (1 in 50),
# Cookie canary=always (1 in 100); $plain: tenants only; $plain 'seed'
# (issue 21's mix): 1 in 50 carries X-Canary-Opt-In: true, no other
# override.  write_mix writes it one request a line, "Header:
# value<TAB>Header: value...".
sub request_mix {
    my ($n, $plain) = @_;

    my @mix;

    for my $i (1 .. $n) {
        my @h = ('X-Tenant-Id' => sprintf('tenant-%05d', $i));

        if ($plain && $plain eq 'seed') {
            push @h, 'X-Canary-Opt-In' => 'true' if $i % 50 == 0;
        } elsif ($plain) {
            # tenants only (the rollback runs: an override would keep
            # sending its request to canary whatever the weight)
        } elsif ($i % 50 == 0) {
            push @h, 'X-Canary' => 'always';
        } elsif ($i % 50 == 25) {
            push @h, 'X-Canary' => 'never';
        } elsif ($i % 100 == 10) {
            push @h, 'Cookie' => 'session=abc123; canary=always';
        }

        push @mix, \@h;
    }

    return \@mix;
}


sub write_mix {
    my ($path, $mix) = @_;

    spew($path, join('', map {
        my @h = @$_;
        my @pairs;
        push @pairs, "$h[$_ * 2]: $h[$_ * 2 + 1]" for 0 .. $#h / 2;
        join("\t", @pairs) . "\n";
    } @$mix));
}


# ---- statistics ------------------------------------------------------------

sub median {
    my @s = sort { $a <=> $b } grep { defined } @_;

    return undef unless @s;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}


# nearest rank
sub percentile {
    my ($p, @v) = @_;

    my @s = sort { $a <=> $b } grep { defined } @v;

    return undef unless @s;

    my $rank = int(($p / 100) * @s + 0.999999);
    $rank = 1 if $rank < 1;
    $rank = @s if $rank > @s;

    return $s[$rank - 1];
}


sub min_max {
    my @s = sort { $a <=> $b } grep { defined } @_;

    return (undef, undef) unless @s;
    return ($s[0], $s[-1]);
}


# /proc/PID/stat: user + system CPU seconds of one process
sub cpu_seconds {
    my ($pid) = @_;

    my $stat = slurp("/proc/$pid/stat") // return undef;
    $stat =~ s/^.*\) //s;
    my @f = split ' ', $stat;

    # fields 14 and 15 of stat (utime, stime), here 11 and 12
    return ($f[11] + $f[12]) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}


# all CPUs together, from /proc/stat: (busy seconds, total seconds)
sub system_cpu {
    my ($line) = (slurp('/proc/stat') // '') =~ /^cpu\s+(.*)$/m;
    my @f = split ' ', $line // '';
    my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK());
    my $total = 0;

    $total += $_ for @f;

    # idle and iowait are fields 4 and 5
    my $idle = ($f[3] // 0) + ($f[4] // 0);

    return (($total - $idle) / $hz, $total / $hz);
}


# VmRSS, RssAnon, RssFile, RssShmem (kB) and Pss (kB) of one process
sub memory_kb {
    my ($pid) = @_;

    my %m;
    my $status = slurp("/proc/$pid/status") // '';

    for my $k (qw(VmRSS RssAnon RssFile RssShmem)) {
        $m{$k} = $1 if $status =~ /^$k:\s+(\d+) kB/m;
    }

    my $rollup = slurp("/proc/$pid/smaps_rollup") // '';
    $m{Pss} = $1 if $rollup =~ /^Pss:\s+(\d+) kB/m;

    return \%m;
}


1;
