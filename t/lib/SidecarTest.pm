package SidecarTest;

=head1 NAME

SidecarTest - stories of canary-sidecar against real nginx, Redis and
origins, on top of CanaryTest

=head1 SYNOPSIS

    use FindBin;
    use lib "$FindBin::Bin/lib";
    use Test::More;
    use SidecarTest;

    my $s = SidecarTest->new(canary_fault => 5);
    $s->start;                        # redis, nginx with split "api"
    $s->traffic(clients => 3, rate => 100);
    $s->sidecar(plan => SidecarTest::fast_plan());

    $s->wait_for(sub { $s->hget('state') eq 'rolled_back' }, 20,
                 'rolled back') or $s->show_log;

    my @r = $s->receipts;             # [{ id => ..., ...receipt }]
    $s->finish;                       # sidecars, traffic, nginx log check

=head1 DESCRIPTION

The nginx of a story has split C<api> (C<key $http_x_tenant_id>) with
upstreams C<st> and C<cn>, each an nginx server block answering
C<"stable st\n"> / C<"canary cn\n">.  Faults are switched at run time by
files in the prefix: C<fault_canary> makes the given percent
(C<canary_fault>, by C<split_clients> on C<$request_id>) of canary
responses 500; C<fault_stable> the same for stable (C<stable_fault>);
C<slow_canary> sends canary requests through the slow origin
(C<t/lib/slow_origin.pl>), which answers after C<slow_ms>.

The sidecars and the traffic are stopped by C<finish> or at exit, before
CanaryTest stops nginx, Redis and the slow origin.  Core Perl only, plus
CanaryTest and Traffic.

=head1 METHODS

=over

=item new(%opts), start

Options: C<canary_fault>, C<stable_fault> (percent, default 5 and 50),
C<slow_ms> (default 200), C<workers> (default 1), C<prefix> (the Redis
key prefix, default C<canary:>), C<nginx> (how many nginx, a fleet
sharing one Redis and the fault switches; default 1), C<guard> (the
arguments of the module's in-proxy C<guard> in the split; none by
default), C<nodes> (each nginx reports itself to Redis as node
C<web-1>, C<web-2>, ...: C<canary_redis ... node=>; C<names> gives some
a name of their own, by index: C<< { 1 => 'web-1' } >>), C<same_second>
(the nginx start within one second, so that their counters have one
C<created>), C<intervals> (the
C<canary_redis interval=> of some nginx, by index: C<< { 2 => '5s' } >>;
default 200ms), C<canary_faults> (the canary's percent of 500s of some
nginx, by index, when C<fault_canary> is on; default C<canary_fault>),
C<canary_body> (what the canary answers when it answers 200, without the
newline; default C<canary cn>: a shadow comparing bodies sees it differ
from stable's C<stable st>), C<split_conf> (more lines inside C<canary_split api>, e.g. C<cohort> and
C<cohort_weight>).

=item nginx($i), stop_nginx($i)

The CanaryTest of the i-th nginx (0: the first, which also runs Redis);
stopping one leaves its address in the sidecar's C<--status> list.

=item traffic(%opts)

Starts a L<Traffic> load on every nginx of the fleet: C<clients> forked
clients (default 3), each making about C<rate> requests a second
(default 100) on a keep-alive connection (a new one, to any nginx of the
fleet, after 2% of the responses when there are several), as tenants
C<tenant-1> .. C<tenant-N> (C<tenants>, default 2000) and, a share
C<pinned_share> of the time (default 0.1), the pinned test tenant
C<test-tenant-abc123>.  Every response that is not a 200 is logged as
"TIME STATUS TENANT BODY" to C<traffic.log> in the prefix
(C<bad_responses>), and so is every request that got no response at all,
as status 0 with what happened (a failed connect, a timeout of 5s, a
connection closed in the middle of a response; a keep-alive connection
the server closed before the request was read is only resent: see
L<Traffic>).  C<stop_traffic> stops them.

=item sidecar(%opts), run_sidecar(@args)

Starts canary-sidecar with C<--redis>, C<--split api>, C<--status> of
the nginx (none with opt C<fleet>: the sidecar reads the fleet from
Redis), C<--receipts> and C<--plan> (opt C<plan>, a hash written as
JSON; or C<plan_file>), C<--id> (opt C<id>) and C<args>; its stderr goes
to C<sidecar-ID.log>.  Opt C<wrap>: a command that execs the rest (the
pid stays the sidecar's), e.g. C<unshare>.  Returns the pid.  C<run_sidecar> runs it to the
end and returns (exit status, output); a sidecar killed by a signal
fails a test, and the output is kept in C<sidecar-run-N.log>.

C<CANARY_SIDECAR> names the binary (default C<build/canary-sidecar>;
C<make check> runs the stories on its AddressSanitizer and UBSan build).

=item hget($field), split_hash, state_hash, receipts, operations

Redis: a field of C<canary:api>, the whole hash, the sidecar's state,
the receipts of the stream (decoded, oldest first, each with C<_id>; a
receipt that is not a JSON object fails a test), their operations.

=item wait_for($code, $seconds, $name)

Polls every 50ms; returns true when the code does, else fails a test
named $name and returns false.

=item fault($file, $on)

Creates or removes C<fault_canary>, C<fault_stable> or C<slow_canary> in
the first nginx's prefix; returns the time.

=item kill_sidecar($id, $signal), sidecar_log($id), show_log($id)

Stops a sidecar (C<TERM> by default, C<INT> or C<KILL>) and waits for it
(5s, then SIGKILL); after C<TERM> or C<INT> one test says it exited 0, as
the README promises.  Returns the wait status.  Its log; its last 40
lines as a diag.

=item ctl(@args)

Runs C<scripts/canary-ctl> on this Redis and prefix as C<operator>;
returns its output.

=item sides(@tenants)

Asks the first nginx where each tenant goes now; C<{ stable => N,
canary => M }>.

=item finish

Stops the traffic and the sidecars (SIGTERM: each must exit 0), checks
the sidecars' logs for sanitizer reports (one C<ok>) and that every line
of the receipts file is a JSON object (one C<ok>), then stops every
nginx (CanaryTest checks their error logs).

=back

=cut

use strict;
use warnings;

use Exporter qw(import);
use File::Basename qw(dirname);
use JSON::PP;
use POSIX qw(_exit WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);

use CanaryTest;
use Traffic;

our @EXPORT_OK = qw(fast_plan);

our $ROOT = dirname(dirname(dirname(__FILE__)));
our $SIDECAR = $ENV{CANARY_SIDECAR} || "$ROOT/build/canary-sidecar";
our $CTL = "$ROOT/scripts/canary-ctl";

our $PINNED = 'test-tenant-abc123';

my @ALL;                # every SidecarTest, for the END block
my %BAD_RECEIPT;        # receipts already reported as not JSON

my $SANITIZER = qr/AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer
                   |runtime\ error:/x;


# stages of 1-2 seconds, a 5s window: a whole rollout in ~15 seconds
sub fast_plan {
    my (%o) = @_;

    my $plan = {
        pins => [$PINNED],
        stages => [
            { name => 'canary',      weight => 0,   hold => '2s' },
            { name => '5_percent',   weight => 5,   hold => '2s' },
            { name => '20_percent',  weight => 20,  hold => '2s' },
            { name => '50_percent',  weight => 50,  hold => '2s' },
            { name => '100_percent', weight => 100, hold => '0s',
              manual => JSON::PP::true },
        ],
        slo => { latency_p99_ratio_max => 1.5, error_rate_ratio_max => 2.0,
                 error_rate_max => 5, availability_min => 99.9,
                 min_requests => 50 },
        interval => '250ms',
        violation_for => '1s',
        window => '5s',
        on_violation => 'rollback',
    };

    $plan->{$_} = $o{$_} for keys %o;

    return $plan;
}


sub new {
    my ($class, %o) = @_;

    die "SidecarTest: $SIDECAR not found: run make\n" unless -x $SIDECAR;

    my $name = $o{name} || 'sidecar';

    my $self = bless {
        name         => $name,
        t            => CanaryTest->new(name => $name),
        fleet        => [],
        canary_fault => defined $o{canary_fault} ? $o{canary_fault} : 5,
        stable_fault => defined $o{stable_fault} ? $o{stable_fault} : 50,
        slow_ms      => $o{slow_ms} || 200,
        workers      => $o{workers} || 1,
        prefix_key   => $o{prefix} || 'canary:',
        guard        => $o{guard},
        nodes        => $o{nodes},
        names        => $o{names} || {},
        same_second  => $o{same_second},
        intervals    => $o{intervals} || {},
        canary_faults => $o{canary_faults} || {},
        split_conf   => $o{split_conf} || '',
        canary_body  => $o{canary_body} || 'canary cn',
        sidecars     => {},
        traffic      => [],
        owner        => $$,
    }, $class;

    push @ALL, $self;

    for my $i (2 .. ($o{nginx} || 1)) {
        push @{$self->{fleet}}, CanaryTest->new(name => "$name-nginx$i");
    }

    return $self;
}


sub t      { $_[0]{t} }
sub prefix { $_[0]{t}->prefix }
sub port   { $_[0]{t}->port('http') }
sub key    { "$_[0]{prefix_key}api" }
sub status_url { 'http://127.0.0.1:' . $_[0]->port . '/canary_status' }

sub nginx  { $_[1] ? $_[0]{fleet}[$_[1] - 1] : $_[0]{t} }
sub all_nginx { ($_[0]{t}, @{$_[0]{fleet}}) }

sub status_urls {
    map { 'http://127.0.0.1:' . $_->port('http') . '/canary_status' }
        $_[0]->all_nginx;
}


sub start {
    my ($self) = @_;

    my $t = $self->{t};

    $t->redis_start;

    # the canary when slow (a CanaryTest helper: its teardown stops it)
    Traffic::slow_origin($t, $t->port('slow'), $self->{slow_ms},
                         "canary cn\n");

    $_->write_conf($self->_conf($_), workers => $self->{workers})
        for $self->all_nginx;

    # just after a second begins: each start takes some 50 ms
    sleep 0.005 while $self->{same_second} && time - int(time) > 0.05;

    $_->start for $self->all_nginx;

    # canary-ctl writes a split only once a live nginx reports it: the
    # first report comes an interval after nginx starts
    my $until = time + 10;
    sleep 0.05 until $self->ctl('fleet', 'api', '--json') =~ /"node":/
                     || time > $until;

    return $self;
}


sub stop_nginx {
    my ($self, $i) = @_;

    $self->nginx($i)->stop;
}


# one nginx of the fleet: its own ports; Redis and the fault switches
# (files in the first one's prefix) are shared
sub _conf {
    my ($self, $t) = @_;

    my $p = $self->{t}->prefix;
    my $port = $t->port('http');
    my ($st, $cn) = ($t->port('st'), $t->port('cn'));
    my $slow = $self->{t}->port('slow');
    my $rport = $self->{t}->redis_port;
    my ($cf, $sf) = ($self->{canary_fault}, $self->{stable_fault});
    my $guard = $self->{guard} ? "guard $self->{guard};" : '';
    my ($i) = grep { ($self->all_nginx)[$_] == $t } 0 .. $#{$self->{fleet}} + 1;
    my $node = $self->{nodes} ? ' node=web-' . ($i + 1) : '';
    $node = " node=$self->{names}{$i}" if defined $self->{names}{$i};
    my $interval = $self->{intervals}{$i} || '200ms';
    $cf = $self->{canary_faults}{$i} if defined $self->{canary_faults}{$i};

    return <<"EOF";
    canary_zone canary 4m;
    canary_redis 127.0.0.1:$rport interval=$interval prefix=$self->{prefix_key}$node;

    canary_split api {
        stable st;
        canary cn;
        key \$http_x_tenant_id;
        $guard
        $self->{split_conf}
    }

    split_clients "\${request_id}" \$cn_bad { $cf% "1"; * ""; }
    split_clients "\${request_id}" \$st_bad { $sf% "1"; * ""; }

    upstream st { server 127.0.0.1:$st; }
    upstream cn { server 127.0.0.1:$cn; }

    default_type text/plain;

    server {
        listen 127.0.0.1:$st;

        location / {
            set \$fault "";
            if (-f $p/fault_stable) { set \$fault "on"; }
            set \$hit "\${fault}\${st_bad}";
            if (\$hit = "on1") { return 500 "stable st\\n"; }
            return 200 "stable st\\n";
        }
    }

    server {
        listen 127.0.0.1:$cn;

        location / {
            if (-f $p/slow_canary) { rewrite ^ /slow last; }
            set \$fault "";
            if (-f $p/fault_canary) { set \$fault "on"; }
            set \$hit "\${fault}\${cn_bad}";
            if (\$hit = "on1") { return 500 "canary cn\\n"; }
            return 200 "$self->{canary_body}\\n";
        }

        location = /slow {
            internal;
            proxy_pass http://127.0.0.1:$slow;
        }
    }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary api;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF
}


# ---- faults ----------------------------------------------------------------

sub fault {
    my ($self, $what, $on) = @_;

    my $file = $self->prefix . "/$what";

    if ($on) {
        open my $fh, '>', $file or die "SidecarTest: $file: $!\n";
        close $fh;
        chmod 0644, $file;

    } else {
        unlink $file;
    }

    return time;
}


# ---- traffic ---------------------------------------------------------------

sub traffic {
    my ($self, %o) = @_;

    my $tenants = $o{tenants} || 2000;
    my $share = defined $o{pinned_share} ? $o{pinned_share} : 0.1;
    my @ports = map { $_->port('http') } $self->all_nginx;

    push @{$self->{traffic}}, Traffic->start(
        ports => \@ports, clients => $o{clients} || 3,
        rate => $o{rate} || 100, log => $self->prefix . '/traffic.log',
        tenant => sub { rand() < $share ? $PINNED
                                        : 'tenant-' . (1 + int rand $tenants) },
        # a new connection now and then spreads the load over the fleet
        reconnect => @ports > 1 ? 0.02 : 0);
}


# [time, status, tenant, body] of each non-200 response, oldest first
sub bad_responses {
    my ($self) = @_;

    my $log = $self->prefix . '/traffic.log';
    open my $fh, '<', $log or return ();

    my @r = map { chomp; [split / /, $_, 4] } <$fh>;

    return sort { $a->[0] <=> $b->[0] } @r;
}


sub stop_traffic {
    my ($self) = @_;

    $_->stop for splice @{$self->{traffic}};
}


# ---- the sidecar -----------------------------------------------------------

sub write_plan {
    my ($self, $plan, $name) = @_;

    my $file = $self->prefix . '/' . ($name || 'plan') . '.json';

    open my $fh, '>', $file or die "SidecarTest: $file: $!\n";
    print $fh ref $plan ? JSON::PP->new->canonical->pretty->encode($plan)
                        : $plan;
    close $fh;

    return $file;
}


sub sidecar_args {
    my ($self, %o) = @_;

    my $id = $o{id} || 'sidecar-a';
    my $plan = $o{plan_file}
               || $self->write_plan($o{plan} || fast_plan(), "plan-$id");

    return ($SIDECAR, '--redis', '127.0.0.1:' . $self->{t}->redis_port,
            '--prefix', $self->{prefix_key}, '--split', 'api',
            (map { ('--status', $_) } $o{fleet} ? () : $self->status_urls),
            '--plan', $plan, '--id', $id,
            '--receipts', $self->prefix . '/receipts.jsonl',
            @{$o{args} || []});
}


sub sidecar {
    my ($self, %o) = @_;

    my $id = $o{id} || 'sidecar-a';
    my @cmd = $self->sidecar_args(%o);
    my $log = $self->log_path($id);

    my $pid = fork;
    die "SidecarTest: fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        exec @{$o{wrap} || []}, @cmd or _exit(127);
    }

    $self->{sidecars}{$id} = $pid;

    return $pid;
}


sub log_path { $_[0]->prefix . "/sidecar-$_[1].log" }


sub sidecar_log {
    my ($self, $id) = @_;

    open my $fh, '<', $self->log_path($id || 'sidecar-a') or return '';
    local $/;

    return scalar <$fh>;
}


sub show_log {
    my ($self, $id) = @_;

    my $log = $self->sidecar_log($id);
    my @lines = split /\n/, $log;
    splice @lines, 0, @lines - 40 if @lines > 40;

    diag("sidecar log (last lines):\n" . join("\n", @lines));
}


# SIGTERM (default), SIGINT or SIGKILL; waits for it.  After SIGTERM or
# SIGINT the sidecar finishes its step, gives up the lease and exits 0
# (README): one test says it did.  Returns the wait status.
sub kill_sidecar {
    my ($self, $id, $sig, %o) = @_;

    $id ||= 'sidecar-a';
    $sig ||= 'TERM';

    my $pid = delete $self->{sidecars}{$id} or return;
    my ($st, $how) = _stop($pid, $sig);

    if (($sig eq 'TERM' || $sig eq 'INT') && !$o{quiet}) {
        local $Test::Builder::Level = $Test::Builder::Level + 1;

        is($how, 'exit 0', "$id: SIG$sig, then exit 0")
            or $self->show_log($id);
    }

    return $st;
}


# the exit code; a sidecar killed by a signal (a crash) fails a test.
# The output is kept in sidecar-run-N.log too, for the sanitizer check.
sub run_sidecar {
    my ($self, @args) = @_;

    my $pid = open(my $fh, '-|');
    die "SidecarTest: fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec @args or do { print "exec $args[0]: $!\n"; _exit(127) };
    }

    local $/;
    my $out = <$fh>;
    close $fh;
    my $st = $?;

    $out = '' unless defined $out;

    my $log = $self->log_path('run-' . ++$self->{runs});
    open my $lfh, '>', $log or die "SidecarTest: $log: $!\n";
    print $lfh $out;
    close $lfh;

    if ($st & 127) {
        local $Test::Builder::Level = $Test::Builder::Level + 1;
        fail("canary-sidecar @args[1 .. $#args]: exits, not killed by "
             . 'signal ' . ($st & 127));
        diag($out);
    }

    return ($st >> 8, $out);
}


sub ctl {
    my ($self, @args) = @_;

    my $pid = open(my $fh, '-|');
    die "SidecarTest: fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        $ENV{CANARY_ACTOR} = 'operator';
        exec $CTL, '--redis', '127.0.0.1:' . $self->{t}->redis_port,
             '--prefix', $self->{prefix_key}, @args
            or _exit(127);
    }

    local $/;
    my $out = <$fh>;
    close $fh;

    return $out;
}


# ---- Redis -----------------------------------------------------------------

sub redis { my $self = shift; $self->{t}->redis_cli(@_) }


sub hget {
    my ($self, $field) = @_;

    my $v = $self->redis('HGET', $self->key, $field);

    return defined $v ? $v : '';
}


sub _hash {
    my ($self, $key) = @_;

    my @l = $self->redis('HGETALL', $key);

    return { @l % 2 ? () : @l };
}


sub split_hash { $_[0]->_hash($_[0]->key) }
sub state_hash { $_[0]->_hash($_[0]->key . ':sidecar') }


sub receipts {
    my ($self) = @_;

    my @l = $self->redis('XRANGE', $self->key . ':receipts', '-', '+');
    my @r;

    # redis-cli without a tty: id, "receipt", json, one a line
    for (my $i = 0; $i + 2 < @l + 0; $i += 3) {
        my $r = _receipt($l[$i + 2], "receipt $l[$i] in the stream");
        $r->{_id} = $l[$i];
        push @r, $r;
    }

    return @r;
}


# a receipt decoded; one that is not a JSON object fails a test (once
# per receipt) and comes back as { _bad => TEXT }
sub _receipt {
    my ($text, $what) = @_;

    my $r = eval { decode_json($text) };

    return $r if ref $r eq 'HASH';

    unless ($BAD_RECEIPT{$what}++) {
        local $Test::Builder::Level = $Test::Builder::Level + 2;
        fail("$what is a JSON object");
        diag("not JSON: $text");
    }

    return { _bad => $text };
}


sub operations { map { $_->{operation} } $_[0]->receipts }


sub wait_for {
    my ($self, $code, $seconds, $name) = @_;

    my $deadline = time + $seconds;

    until ($code->()) {
        if (time > $deadline) {
            fail($name);
            return 0;
        }

        sleep 0.05;
    }

    return 1;
}


# every tenant's side, as nginx routes it now
sub sides {
    my ($self, @tenants) = @_;

    my $res = $self->{t}->route_many($self->port,
        [ map { { path => '/', headers => ['X-Tenant-Id' => $_] } }
          @tenants ], clients => 2);

    my %side;
    $side{$_->{side} || 'none'}++ for @$res;

    return \%side;
}


# ---- the end ---------------------------------------------------------------

# sends the signal and waits (5s, then SIGKILL); returns the wait status
# and what it means: "exit N", "signal N", or "still running 5s after
# SIGX" (then killed)
sub _stop {
    my ($pid, $sig) = @_;

    local $?;

    kill $sig, $pid;

    my $deadline = time + 5;

    until (waitpid($pid, WNOHANG) == $pid) {
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            return ($?, "still running 5s after SIG$sig");
        }

        sleep 0.02;
    }

    return ($?, $? & 127 ? 'signal ' . ($? & 127) : 'exit ' . ($? >> 8));
}


# stops the traffic and the sidecars (SIGTERM: each must exit 0, one test
# each, unless quiet)
sub stop_all {
    my ($self, %o) = @_;

    return if $$ != $self->{owner} || $self->{stopped}++;

    $self->stop_traffic;
    $self->kill_sidecar($_, 'TERM', quiet => $o{quiet})
        for sort keys %{$self->{sidecars}};
}


# stops what this file started, checks the sidecars' logs and the
# receipts file, then stops nginx (CanaryTest checks its log)
sub finish {
    my ($self) = @_;

    $self->stop_all;
    $self->check_sidecar_logs;
    $self->check_receipts_file;

    # each checks its error log (a stopped one was checked already)
    $_->stop for $self->all_nginx;
}


# one ok(): no sanitizer report in any sidecar's log
sub check_sidecar_logs {
    my ($self) = @_;

    my @bad;

    for my $log (glob $self->prefix . '/sidecar-*.log') {
        open my $fh, '<', $log or next;
        push @bad, map { "$log: $_" }
                   grep { /$SANITIZER/ } <$fh>;
    }

    ok(!@bad, "$self->{name}: no sanitizer report in the sidecar logs")
        or diag(join '', @bad);
}


# one ok(): every line of the --receipts file is a JSON object
sub check_receipts_file {
    my ($self) = @_;

    my $file = $self->prefix . '/receipts.jsonl';
    my @bad;
    my $n = 0;

    if (open my $fh, '<', $file) {
        while (my $line = <$fh>) {
            $n++;
            my $r = eval { decode_json($line) };
            push @bad, "line $.: $line" unless ref $r eq 'HASH';
        }
    }

    ok(!@bad, "$self->{name}: each of the $n lines of the receipts file "
              . 'is a JSON object')
        or diag(join '', @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
}


# before CanaryTest's END (END blocks run last defined, first); the tests
# are over by then: nothing is asserted
END {
    local $?;
    $_->stop_all(quiet => 1) for grep { $_ } @ALL;
}


1;
