package SentinelStory;

=head1 NAME

SentinelStory - a Redis primary, one replica and three redis-sentinel
processes on loopback, for the failover stories

=head1 SYNOPSIS

    use SentinelStory;

    my $t = CanaryTest->new;
    my $rs = SentinelStory->start($t);      # waits until they agree

    $rs->sentinels;     # "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
    $rs->master;        # the master's name, "canary-master"
    $rs->primary;       # "127.0.0.1:P", the replica: $rs->replica

    $rs->kill_primary;                        # SIGKILL
    my $s = $rs->wait_failover(15);           # seconds, or undef
    $rs->cli($rs->replica, 'HGET', 'canary:app', 'weight');

=head1 DESCRIPTION

The servers run under C<< $t->prefix >>/sentinel on free ports of
C<< $t->port >> and are stopped with C<$t> (C<< $t->spawn >>).  The
sentinels monitor the primary with quorum 2, down-after-milliseconds
1000 and failover-timeout 3000, so a killed primary is replaced in about
2 to 4 seconds.  C<start> returns once every sentinel names the primary
and knows the two others and the replica, and the replica is in sync.
C<start> dies (C<skip_all> unless C<CANARY_NO_SKIP>) without
redis-sentinel.  Core Perl only, plus CanaryTest.

=over

=item master_addr($sentinel)

What that sentinel (C<"HOST:PORT">, default the first) says the master
is, as C<"IP:PORT">, or undef.

=item wait_failover($seconds)

Waits until every sentinel names the replica; returns the seconds since
C<kill_primary>, or undef.

=item cli($address, @args)

redis-cli on C<"HOST:PORT">: the reply lines (a list) or the output.

=back

=cut

use strict;
use warnings;

use File::Path qw(make_path);
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);

use CanaryTest;

our $MASTER = 'canary-master';


sub start {
    my ($class, $t, %opts) = @_;

    if (system('command -v redis-sentinel >/dev/null 2>&1') != 0) {
        die "SentinelStory: redis-sentinel not found\n"
            if $ENV{CANARY_NO_SKIP};
        plan skip_all => 'redis-sentinel not installed (apt-get install '
                         . 'redis-sentinel)';
    }

    my $self = bless { t => $t, dir => $t->prefix . '/sentinel' }, $class;
    my $dir = $self->{dir};

    make_path($dir);

    my $pp = $t->port('sentinel-primary');
    my $rp = $t->port('sentinel-replica');

    $self->{primary} = "127.0.0.1:$pp";
    $self->{replica} = "127.0.0.1:$rp";

    $self->{pids}{primary} = $self->_server('primary', $pp);
    $self->{pids}{replica} = $self->_server('replica', $rp,
                                            '--replicaof', '127.0.0.1', $pp);

    my @s;

    for my $i (1 .. 3) {
        my $port = $t->port("sentinel-$i");
        my $conf = "$dir/sentinel-$i.conf";

        open my $fh, '>', $conf or die "SentinelStory: $conf: $!\n";
        print $fh <<"EOF";
port $port
bind 127.0.0.1
daemonize no
dir $dir
logfile $dir/sentinel-$i.log
sentinel monitor $MASTER 127.0.0.1 $pp 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 3000
sentinel parallel-syncs $MASTER 1
EOF
        close $fh;

        $t->spawn('redis-sentinel', $conf);
        push @s, "127.0.0.1:$port";
    }

    $self->{sentinels} = \@s;

    my $agree = sub {
        for my $s (@s) {
            my $m = $self->master_addr($s) // return 0;
            return 0 unless $m eq $self->{primary};

            my %info = $self->_pairs($s, 'SENTINEL', 'MASTER', $MASTER);
            return 0 unless ($info{'num-other-sentinels'} // 0) == 2
                            && ($info{'num-slaves'} // 0) == 1;
        }

        return scalar($self->cli($self->{replica}, 'INFO', 'replication'))
               =~ /master_link_status:up/;
    };

    my $deadline = time + ($opts{timeout} || 20);

    until ($agree->()) {
        die "SentinelStory: the sentinels do not agree in time\n"
            . `tail -n 5 $dir/*.log` if time > $deadline;
        sleep 0.2;
    }

    return $self;
}


sub _server {
    my ($self, $name, $port, @extra) = @_;

    my $dir = "$self->{dir}/$name";

    make_path($dir);

    my $pid = $self->{t}->spawn('redis-server', '--port', $port,
                                '--bind', '127.0.0.1', '--dir', $dir,
                                '--save', '', '--appendonly', 'no',
                                '--repl-diskless-sync-delay', 0,
                                '--daemonize', 'no',
                                '--logfile', "$dir/redis.log", @extra);

    my $deadline = time + 10;

    until (scalar($self->cli("127.0.0.1:$port", 'PING')) eq 'PONG') {
        die "SentinelStory: redis-server $name does not answer\n"
            if time > $deadline;
        sleep 0.05;
    }

    return $pid;
}


sub sentinels { join ',', @{$_[0]{sentinels}} }
sub sentinel_list { @{$_[0]{sentinels}} }
sub master    { $MASTER }
sub primary   { $_[0]{primary} }
sub replica   { $_[0]{replica} }
sub dir       { $_[0]{dir} }


sub cli {
    my ($self, $address, @args) = @_;

    my ($host, $port) = $address =~ /^(.*):(\d+)$/;

    my $pid = open(my $fh, '-|') // die "SentinelStory: fork: $!\n";

    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec 'redis-cli', '-h', $host, '-p', $port, @args or _exit(127);
    }

    my $out = do { local $/; <$fh> } // '';
    close $fh;
    chomp $out;

    return wantarray ? split(/\n/, $out, -1) : $out;
}


# a reply of name, value, name, value... as a hash
sub _pairs {
    my ($self, $address, @args) = @_;

    my @l = $self->cli($address, @args);

    return @l % 2 ? () : @l;
}


sub master_addr {
    my ($self, $sentinel) = @_;

    $sentinel //= $self->{sentinels}[0];

    my @l = $self->cli($sentinel, 'SENTINEL', 'get-master-addr-by-name',
                       $MASTER);

    return @l == 2 && $l[1] =~ /^\d+$/ ? "$l[0]:$l[1]" : undef;
}


sub kill_primary {
    my ($self) = @_;

    kill 'KILL', $self->{pids}{primary};
    waitpid $self->{pids}{primary}, 0;
    $self->{killed} = time;
}


sub wait_failover {
    my ($self, $seconds) = @_;

    my $deadline = time + $seconds;

    while (time < $deadline) {
        my $all = 1;

        for my $s (@{$self->{sentinels}}) {
            my $m = $self->master_addr($s);
            $all = 0 unless defined $m && $m eq $self->{replica};
        }

        return time - $self->{killed} if $all;

        sleep 0.1;
    }

    return undef;
}


1;
