package Traffic;

=head1 NAME

Traffic - the one load generator of the tests, and the slow origin

=head1 SYNOPSIS

    use FindBin;
    use lib "$FindBin::Bin/lib";
    use Traffic;

    # foreground: exactly 200,000 requests, pipelined, then the counts
    my $r = Traffic->run(port => $port, requests => 200_000, clients => 8,
                         pipeline => 50, tenants => 1000);
    is $r->{status}{200}, 200_000;

    # background: until stopped, every response kept
    my $load = Traffic->start(port => $port, clients => 2, tenants => 300,
                              record => 1);
    ...
    my $rec = $load->stop->{records};    # [{ time, status, variant, ... }]

    # background for a while: 200 connections for 20 seconds
    my $w = Traffic->start(port => $port, clients => 2, connections => 100,
                           seconds => 20, tenants => 5000);
    sleep 1 while $w->running;
    my $n = $w->wait->{responses};

    # a real origin answering after 300ms (t/lib/slow_origin.pl)
    Traffic::slow_origin($t, $t->port('slow'), 300, "canary slow\n");

=head1 DESCRIPTION

C<clients> forked processes, each driving C<connections> HTTP/1.1
connections at once (non-blocking, C<IO::Poll>), with up to C<pipeline>
requests in flight on each.  Every request ends in exactly one of: a
complete response (any status, counted), an error (no response: a failed
connect, a write or read error, the connection closed in the middle of a
response or before any byte of it on a new connection, a timeout, bytes
that are not HTTP), or unanswered (in flight when the run ended: C<stop>
or C<seconds>).  A keep-alive connection that the server closed before reading a request (a
reload, C<keepalive_requests>, C<keepalive_timeout>: no byte of its
answer came, after the connection had answered others) is no error: the
request goes again on a new connection, as HTTP clients do, and counts
as C<resent>; so do requests pipelined behind a response that closed the
connection, or behind one that failed.

Core Perl only: IO::Poll, IO::Socket::INET, POSIX, Storable, File::Temp,
Time::HiRes.

=head1 FUNCTIONS

=over

=item Traffic->start(%opts)

Forks the clients and returns a handle at once.  Options:

=over

=item port, ports

The port of the server (on 127.0.0.1), or an array ref of ports: each
new connection goes to one of them at random.

=item path

The request path (default C</>), or a code ref called with (client
number from 1, request number C<i>) that returns it.

=item tenant, tenants

The C<X-Tenant-Id> of each request: a string, or a code ref called with
(client, C<i>); none when it returns undef.  C<< tenants => N >> is
short for C<"t" . (i % N)>.

=item headers

More header lines: an array ref C<[Name => value, ...]>, or a code ref
called with (client, C<i>, tenant) returning one.  A C<Host> given here
replaces the default C<127.0.0.1:PORT>.

=item requests, seconds

C<requests>: exactly that many requests in all, the clients sharing them
in turn: request C<i> runs over 0 .. N-1, each sent once (without
C<requests>, C<i> counts each client's requests from 0).  C<seconds>:
stop after that long (what is in flight then is unanswered).  Neither:
until C<stop>.  The clients always stop when the test script is gone.

=item clients, connections, pipeline

Processes (default 1), connections of each (default 1), requests in
flight on one connection (default 1; always 1 without C<keep_alive>).

=item rate, pause

C<rate>: requests a second that each client starts at most (default: as
fast as answers come).  C<pause>: seconds a connection waits after each
response before its next request.

=item keep_alive, reconnect

C<keep_alive> (default 1); 0 sends C<Connection: close> and uses a new
connection for each request.  C<reconnect>: the share of responses after
which the connection is closed anyway (e.g. 0.02), so that new
connections spread over C<ports>.  A response saying C<Connection:
close> always closes it (the requests pipelined behind it are resent).

=item timeout

Seconds a request may wait for its response (and a connect for its
connection), default 5; then it is an error C<timeout after Ns>.

=item record

Keep every request's outcome (see C<records> below).

=item log

A file to which every response that is not a 200 is appended as
C<"TIME STATUS TENANT BODY"> (body without trailing white space), and
every error as C<"TIME 0 TENANT what happened">, as it happens.

=item check

A code ref called in the client with each response, a hash ref:
C<status>, C<headers> (lowercase names), C<body>, C<tenant>, C<request>
(the header list sent).  It returns the names of the checks the response
fails; C<checks> counts them.

=back

=item Traffic->run(%opts)

C<start>, then C<wait>: the result.  Needs C<requests> or C<seconds>.

=item $load->running

True while a client still runs.

=item $load->wait

Waits for the clients to end on their own (C<requests> or C<seconds>),
returns the result.

=item $load->stop

Stops the clients (SIGTERM: each ends at once and reports what it got)
and returns the result.  Calling C<stop> or C<wait> again returns the
same result.

=back

The result is a hash ref:

=over

=item sent, responses, resent, unanswered

Requests sent (each once, however often resent), complete responses,
requests sent again on a new connection, requests in flight when the
run was stopped.

=item status

C<< { code => responses } >>.

=item errors, failed

C<< { kind => requests } >> of the requests without a response, kinds
C<connect>, C<write>, C<read>, C<closed> (in the middle of a response, or
before any byte on a new connection), C<timeout>, C<bad> (not an HTTP
response); C<failed> is their sum.

=item latency

C<< { p50, p99, max } >> in milliseconds, from the request written to
its response read (0.1 ms steps), over the responses.

=item checks

C<< { name => responses } >> as C<check> returned them.

=item records

With C<record>: every request's outcome, oldest response first, each
C<< { sent, time, status, tenant, port, weight, variant, reason, side,
error } >>: C<sent> and C<time> the client's clock when the request was
written and when its outcome was known, C<status> 0 when there was no
response (then C<error> says why, else it is C<''>), C<weight> the
C<X-Canary-Weight> header (undef without one), C<variant> and C<reason>
the C<X-Canary-Variant> and C<X-Canary-Reason> headers (C<''> without
one), C<side> the first word of the body (the origin's side).

=back

=head2 The slow origin

=over

=item Traffic::slow_origin($t, $port, $delay_ms, $body, $status)

Starts C<t/lib/slow_origin.pl> (see its POD: a forking HTTP origin that
answers every request after C<$delay_ms>, keep-alive honoured) as a
helper of CanaryTest C<$t> (stopped by its teardown), waits until the
port accepts connections (dies after 10 s), returns its pid.  C<$body>
defaults to C<"slow\n">, C<$status> to 200.

=back

=cut

use strict;
use warnings;

use Errno qw(EAGAIN EINPROGRESS EINTR EWOULDBLOCK);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Poll qw(POLLIN POLLOUT POLLERR POLLHUP);
use IO::Socket::INET;
use POSIX qw(_exit WNOHANG SIGTERM SIG_BLOCK SIG_SETMASK);
use Socket qw(SOL_SOCKET SO_ERROR);
use Storable qw(nstore retrieve);
use Time::HiRes qw(sleep time);

our $SLOW_ORIGIN = dirname(__FILE__) . '/slow_origin.pl';

my @RECORD = qw(sent time status tenant port weight variant reason side
                error);

# the state of one client process; $STOP: SIGTERM came
my (%O, $C, $NEXT_I, $TO, @AGAIN, %R, $LOG, $SLOT, $STOP, $POLL, %BY_SOCK);


# ---- the handle ------------------------------------------------------------

sub start {
    my ($class, %o) = @_;

    my @ports = $o{ports} ? @{$o{ports}} : ($o{port});
    die "Traffic: a port is needed\n" unless defined $ports[0];

    $o{ports} = \@ports;
    $o{clients} ||= 1;
    $o{connections} ||= 1;
    $o{pipeline} ||= 1;
    $o{timeout} ||= 5;
    $o{keep_alive} //= 1;
    $o{pipeline} = 1 unless $o{keep_alive};
    $o{deadline} = time + $o{seconds} if $o{seconds};

    if ($o{tenants}) {
        my $n = $o{tenants};
        $o{tenant} = sub { 't' . $_[1] % $n };
    }

    my $dir = tempdir('traffic-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $self = bless { dir => $dir, kids => [], owner => $$ }, $class;
    my $parent = $$;

    my $n = $o{requests};
    my $per = defined $n ? int(($n + $o{clients} - 1) / $o{clients}) : 0;

    local $?;

    for my $c (1 .. $o{clients}) {
        my ($from, $to) = (0, undef);

        if (defined $n) {
            $from = ($c - 1) * $per;
            $to = $from + $per - 1;
            $to = $n - 1 if $to > $n - 1;
            last if $from > $to;
        }

        my $file = "$dir/client-$c";

        # a SIGTERM before the client's handler is set would kill it
        # without a result
        my $old = POSIX::SigSet->new;
        POSIX::sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGTERM), $old);

        my $pid = fork;

        if (!defined $pid || $pid) {
            POSIX::sigprocmask(SIG_SETMASK, $old);
            die "Traffic: fork: $!\n" unless defined $pid;
        }

        if ($pid == 0) {
            $SIG{TERM} = sub { $STOP = 1 };
            POSIX::sigprocmask(SIG_SETMASK, $old);
            my $res = eval { _client(\%o, $c, $from, $to, $parent) };
            $res //= { died => $@ };
            nstore($res, $file);
            _exit(0);
        }

        push @{$self->{kids}}, [$pid, $file];
    }

    return $self;
}


sub run {
    my ($class, %o) = @_;

    die "Traffic: run needs requests or seconds\n"
        unless defined $o{requests} || $o{seconds};

    return $class->start(%o)->wait;
}


sub running {
    my ($self) = @_;

    local $?;

    for my $k (@{$self->{kids}}) {
        next if $k->[2];
        $k->[2] = 1 if waitpid($k->[0], WNOHANG) == $k->[0];
    }

    return scalar grep { !$_->[2] } @{$self->{kids}};
}


sub wait {
    my ($self) = @_;

    return $self->{result} if $self->{result};

    local $?;

    for my $k (@{$self->{kids}}) {
        waitpid $k->[0], 0 unless $k->[2];
        $k->[2] = 1;
    }

    return $self->{result} = _merge($self->{kids});
}


sub stop {
    my ($self) = @_;

    return $self->{result} if $self->{result};

    local $?;

    kill 'TERM', map { $_->[0] } grep { !$_->[2] } @{$self->{kids}};

    my $deadline = time + 10;

    for my $k (@{$self->{kids}}) {
        until ($k->[2] || waitpid($k->[0], WNOHANG) == $k->[0]) {
            if (time > $deadline) {
                kill 'KILL', $k->[0];
                waitpid $k->[0], 0;
                last;
            }

            sleep 0.01;
        }

        $k->[2] = 1;
    }

    return $self->{result} = _merge($self->{kids});
}


# a handle dropped while its clients run stops them
sub DESTROY {
    my ($self) = @_;

    local ($?, $@, $!);

    return if $$ != $self->{owner} || $self->{result};

    kill 'TERM', map { $_->[0] } grep { !$_->[2] } @{$self->{kids}};
}


sub _merge {
    my ($kids) = @_;

    my %r = (sent => 0, responses => 0, resent => 0, unanswered => 0,
             failed => 0, status => {}, errors => {}, checks => {},
             records => []);
    my %lat;

    for my $k (@$kids) {
        my $c = -e $k->[1] ? retrieve($k->[1]) : undef;

        die "Traffic: client $k->[0] ended without a result\n" unless $c;
        die "Traffic: client $k->[0] died: $c->{died}" if $c->{died};

        $r{$_} += $c->{$_} for qw(sent responses resent unanswered);

        for my $h (qw(status errors checks)) {
            $r{$h}{$_} += $c->{$h}{$_} for keys %{$c->{$h}};
        }

        $lat{$_} += $c->{latency}{$_} for keys %{$c->{latency}};
        push @{$r{records}}, @{$c->{records} || []};
    }

    $r{failed} += $_ for values %{$r{errors}};

    my @steps = sort { $a <=> $b } keys %lat;
    my ($seen, %q) = (0);

    for my $s (@steps) {
        $seen += $lat{$s};

        for my $p (50, 99) {
            $q{"p$p"} //= $s / 10 if $seen >= $r{responses} * $p / 100;
        }
    }

    $r{latency} = { p50 => $q{p50}, p99 => $q{p99},
                    max => @steps ? $steps[-1] / 10 : undef };

    $r{records} = [ map { my $x = $_; +{ map { ($RECORD[$_] => $x->[$_]) }
                                         0 .. $#RECORD } }
                    sort { $a->[1] <=> $b->[1] } @{$r{records}} ];

    return \%r;
}


# ---- a client --------------------------------------------------------------

sub _client {
    my ($o, $c, $from, $to, $parent) = @_;

    %O = %$o;
    ($C, $NEXT_I, $TO, $SLOT) = ($c, $from, $to, time);
    @AGAIN = ();
    %R = (sent => 0, responses => 0, resent => 0, unanswered => 0,
          status => {}, errors => {}, checks => {}, latency => {},
          records => []);

    $SIG{PIPE} = 'IGNORE';
    srand($$ ^ int(time * 1000));

    if ($O{log}) {
        open $LOG, '>>', $O{log} or die "Traffic: $O{log}: $!\n";
        $LOG->autoflush(1);
    }

    my @conns = map { { id => $_ } } 1 .. $O{connections};
    my ($checked, $scan, @ready) = (time, 0);

    $POLL = IO::Poll->new;
    %BY_SOCK = ();

    until ($STOP) {
        my $now = time;

        last if $O{deadline} && $now >= $O{deadline};

        if ($now - $checked > 0.5) {
            last if getppid() != $parent || !kill(0, $parent);
            $checked = $now;
        }

        # every connection when a timer is due (timeouts, rate, pauses,
        # the end), else only those that just had an event: with
        # thousands of connections, most are waiting
        my $all = $now >= $scan;
        my $wake = $now + 0.05;
        my $busy = 0;

        for my $cn ($all ? @conns : @ready) {
            _timeouts($cn, $now) if $all;
            _send($cn, $now, \$wake);
            _mask($cn);
            $busy++ if $cn->{sock} && @{$cn->{queue}};
        }

        if ($all) {
            last if !$busy && !@AGAIN && defined $TO && $NEXT_I > $TO;
            $scan = $wake;

        } elsif ($wake < $scan) {
            $scan = $wake;
        }

        my $wait = $scan - time;
        $wait = 0 if $wait < 0;
        @ready = ();

        unless ($POLL->handles) {
            sleep $wait;
            next;
        }

        $POLL->poll($wait);
        $now = time;

        for my $sock ($POLL->handles(POLLIN | POLLOUT | POLLERR | POLLHUP)) {
            my $cn = $BY_SOCK{$sock} or next;
            my $ev = $POLL->events($sock);

            push @ready, $cn;

            if ($cn->{connecting}) {
                _connected($cn, $now);
                next unless $cn->{sock};
            }

            _write($cn, $now) if $ev & POLLOUT && length $cn->{out};
            _read($cn, $now) if $cn->{sock} && $ev & (POLLIN | POLLERR
                                                      | POLLHUP);
        }
    }

    for my $cn (grep { $_->{sock} } @conns) {
        $R{unanswered} += @{$cn->{queue}};
    }

    delete $R{records} unless $O{record};

    return \%R;
}


# the next request of this client: one to send again, or a new one
sub _next_request {
    return shift @AGAIN if @AGAIN;
    return undef if defined $TO && $NEXT_I > $TO;

    my $i = $NEXT_I++;
    my $tenant = ref $O{tenant} ? $O{tenant}->($C, $i) : $O{tenant};
    my $path = ref $O{path} ? $O{path}->($C, $i) : $O{path} // '/';
    my $h = ref $O{headers} eq 'CODE' ? $O{headers}->($C, $i, $tenant)
                                      : $O{headers} || [];

    my @h = (defined $tenant ? ('X-Tenant-Id' => $tenant) : (), @$h);
    push @h, Connection => 'close' unless $O{keep_alive};

    $R{sent}++;

    return { tenant => $tenant // '', path => $path, headers => \@h };
}


sub _bytes {
    my ($req, $port) = @_;

    my ($text, $host) = ('', 0);
    my @h = @{$req->{headers}};

    while (my ($k, $v) = splice @h, 0, 2) {
        $text .= "$k: $v\r\n";
        $host ||= lc $k eq 'host';
    }

    return "GET $req->{path} HTTP/1.1\r\n"
           . ($host ? '' : "Host: 127.0.0.1:$port\r\n") . "$text\r\n";
}


# may this client start a request now (rate)?
sub _slot_free {
    my ($now, $wake) = @_;

    return 1 unless $O{rate};

    if ($SLOT < $now - 1) {
        $SLOT = $now;
    }

    return 1 if $SLOT <= $now;

    $$wake = $SLOT if $SLOT < $$wake;

    return 0;
}


sub _take_slot {
    $SLOT += 1 / $O{rate} if $O{rate};
}


sub _send {
    my ($cn, $now, $wake) = @_;

    if ($cn->{ready_at} && $cn->{ready_at} > $now) {
        $$wake = $cn->{ready_at} if $cn->{ready_at} < $$wake;
        return;
    }

    while (!$cn->{sock} || (!$cn->{connecting}
                            && @{$cn->{queue}} < $O{pipeline})) {
        return unless _slot_free($now, $wake);

        if ($cn->{sock} && $O{pause} && @{$cn->{queue}}) {
            return;
        }

        my $req = _next_request() or return;

        _take_slot();

        unless ($cn->{sock}) {
            unless (_connect($cn, $now)) {
                _fail($req, $cn, $now, 'connect', "connect to $cn->{port}: "
                      . $cn->{why});
                $cn->{ready_at} = $now + 0.05;
                return;
            }
        }

        $req->{sent} = $now;
        $cn->{out} .= _bytes($req, $cn->{port});
        push @{$cn->{queue}}, $req;

        last if $cn->{connecting};
    }

    _write($cn, $now) if $cn->{sock} && !$cn->{connecting}
                         && length $cn->{out};
}


sub _connect {
    my ($cn, $now) = @_;

    my $port = $O{ports}[int rand @{$O{ports}}];

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Blocking => 0);

    $cn->{port} = $port;

    unless ($s) {
        $cn->{why} = "$!";
        return 0;
    }

    %$cn = (id => $cn->{id}, port => $port, sock => $s, out => '',
            in => '', queue => [], answered => 0, since => $now,
            connecting => 1);
    $BY_SOCK{$s} = $cn;

    return 1;
}


sub _connected {
    my ($cn, $now) = @_;

    my $err = unpack 'i', getsockopt($cn->{sock}, SOL_SOCKET, SO_ERROR)
                          // pack 'i', 0;

    if ($err) {
        local $! = $err;
        my @q = @{$cn->{queue}};
        _close($cn);
        _fail(shift @q, $cn, $now, 'connect', "connect to $cn->{port}: $!")
            if @q;
        unshift @AGAIN, @q;
        $cn->{ready_at} = $now + 0.05;
        return;
    }

    $cn->{connecting} = 0;
}


sub _write {
    my ($cn, $now) = @_;

    my $n = syswrite($cn->{sock}, $cn->{out});

    if (defined $n) {
        substr($cn->{out}, 0, $n) = '';
        return;
    }

    return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;

    _broken($cn, $now, 'write', "write: $!");
}


sub _read {
    my ($cn, $now) = @_;

    my $n = sysread($cn->{sock}, $cn->{in}, 65536, length $cn->{in});

    if (!defined $n) {
        return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        _broken($cn, $now, 'read', "read: $!");
        return;
    }

    if ($n == 0) {
        _broken($cn, $now, 'closed', length $cn->{in}
                ? 'closed in the middle of a response'
                : 'closed before any byte of a response');
        return;
    }

    while ($cn->{sock} && @{$cn->{queue}}) {
        my $res = _parse(\$cn->{in});

        last unless $res;

        my $req = shift @{$cn->{queue}};

        if ($res->{bad}) {
            _fail($req, $cn, $now, 'bad', $res->{bad});
            _drop($cn);
            return;
        }

        $cn->{answered}++;
        _answered($req, $res, $cn, $now);
        $cn->{ready_at} = $now + $O{pause} if $O{pause};

        if ($res->{close} || !$O{keep_alive}
            || ($O{reconnect} && rand() < $O{reconnect}))
        {
            _drop($cn);
            return;
        }
    }
}


# one response from the front of the buffer: { status, head, body, close },
# { bad => why }, or undef while incomplete
sub _parse {
    my ($buf) = @_;

    my $end = index($$buf, "\r\n\r\n");

    if ($end < 0) {
        return length $$buf > 65536 ? { bad => 'no end of the header' }
                                    : undef;
    }

    my $head = substr($$buf, 0, $end);
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})};

    return { bad => 'not an HTTP response: ' . substr($head, 0, 80) }
        unless $status;

    my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
    my $body;
    my $at = $end + 4;

    if (defined $len) {
        return undef if length $$buf < $at + $len;
        $body = substr($$buf, $at, $len);
        $at += $len;

    } elsif ($head =~ /^Transfer-Encoding:\s*chunked/mi) {
        $body = '';

        for (;;) {
            my $eol = index($$buf, "\r\n", $at);
            return undef if $eol < 0;

            my $size = hex substr($$buf, $at, $eol - $at);
            return undef if length $$buf < $eol + 2 + $size + 2;

            $body .= substr($$buf, $eol + 2, $size);
            $at = $eol + 2 + $size + 2;

            last if $size == 0;
        }

    } elsif ($status =~ /^(?:1|204|304)/) {
        $body = '';

    } else {
        return { bad => "no Content-Length: " . substr($head, 0, 80) };
    }

    substr($$buf, 0, $at) = '';

    return { status => $status, head => $head, body => $body,
             close => scalar $head =~ /^Connection:\s*close/mi };
}


sub _answered {
    my ($req, $res, $cn, $now) = @_;

    my $status = $res->{status};

    $R{responses}++;
    $R{status}{$status}++;
    $R{latency}{int(($now - $req->{sent}) * 10000)}++;

    if ($LOG && $status != 200) {
        (my $body = $res->{body}) =~ s/\s+$//;
        printf $LOG "%.3f %d %s %s\n", $now, $status, $req->{tenant}, $body;
    }

    if ($O{check}) {
        my %h;

        for (split /\r\n/, $res->{head}) {
            $h{lc $1} = $2 if /^([^:\s]+):\s*(.*)$/;
        }

        $R{checks}{$_}++ for $O{check}->({ status => $status,
                                           headers => \%h,
                                           body => $res->{body},
                                           tenant => $req->{tenant},
                                           request => $req->{headers} });
    }

    return unless $O{record};

    my %h;

    for my $name (qw(weight variant reason)) {
        ($h{$name}) = $res->{head} =~ /^X-Canary-$name:\s*(\S*)/mi;
    }

    push @{$R{records}}, [ $req->{sent}, $now, $status, $req->{tenant},
                           $cn->{port}, $h{weight}, $h{variant} // '',
                           $h{reason} // '',
                           $res->{body} =~ /^(\w+)/ ? $1 : '', '' ];
}


sub _fail {
    my ($req, $cn, $now, $kind, $why) = @_;

    $R{errors}{$kind}++;

    printf $LOG "%.3f 0 %s %s\n", $now, $req->{tenant}, $why if $LOG;

    push @{$R{records}}, [ $req->{sent} // $now, $now, 0, $req->{tenant},
                           $cn->{port}, undef, '', '', '', $why ]
        if $O{record};
}


# the connection failed: the request at the front of the queue failed,
# unless the server closed a used keep-alive connection before any byte
# of its answer (then it goes again, as the ones behind it)
sub _broken {
    my ($cn, $now, $kind, $why) = @_;

    my @q = @{$cn->{queue}};
    my $partial = length $cn->{in};

    _close($cn);

    return unless @q;

    if ($cn->{answered} && !$partial && $kind ne 'timeout') {
        $R{resent} += @q;

    } else {
        _fail(shift @q, $cn, $now, $kind, $why);
        $R{resent} += @q;
    }

    unshift @AGAIN, @q;
}


sub _timeouts {
    my ($cn, $now) = @_;

    return unless $cn->{sock};

    my $since = $cn->{connecting} ? $cn->{since}
              : @{$cn->{queue}} ? $cn->{queue}[0]{sent} : undef;

    return unless defined $since && $now - $since > $O{timeout};

    if ($cn->{connecting}) {
        my @q = @{$cn->{queue}};
        _close($cn);
        _fail(shift @q, $cn, $now, 'connect', "connect to $cn->{port}: "
              . "timeout after $O{timeout}s");
        unshift @AGAIN, @q;
        return;
    }

    _broken($cn, $now, 'timeout', "timeout after $O{timeout}s");
}


# closes the connection; what was pipelined behind goes again
sub _drop {
    my ($cn) = @_;

    my @q = @{$cn->{queue} || []};

    _close($cn);
    $R{resent} += @q;
    unshift @AGAIN, @q;
}


# what poll waits for on this connection
sub _mask {
    my ($cn) = @_;

    return unless $cn->{sock};

    my $ev = 0;
    $ev |= POLLIN if @{$cn->{queue}} || $cn->{connecting};
    $ev |= POLLOUT if length $cn->{out} || $cn->{connecting};

    $POLL->mask($cn->{sock} => $ev);
}


sub _close {
    my ($cn) = @_;

    if (my $s = $cn->{sock}) {
        $POLL->remove($s);
        delete $BY_SOCK{$s};
        close $s;
    }

    %$cn = (id => $cn->{id}, port => $cn->{port},
            answered => $cn->{answered}, ready_at => $cn->{ready_at});
}


# ---- the slow origin -------------------------------------------------------

sub slow_origin {
    my ($t, $port, $delay_ms, $body, $status) = @_;

    my $pid = $t->spawn($^X, $SLOW_ORIGIN, $port, $delay_ms,
                        $body // "slow\n", $status // 200);

    my $deadline = time + 10;

    until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                 Timeout => 1)) {
        die "Traffic: the slow origin on port $port does not accept\n"
            if time > $deadline || !kill 0, $pid;
        sleep 0.02;
    }

    return $pid;
}


1;
