// SmokeTest.cs: drives AffettoOscClient against a running `affetto serve` (outside Unity).
//
//   mcs -out:smoke.exe ../AffettoClient.cs SmokeTest.cs
//   mono smoke.exe run 127.0.0.1 9000 [SECONDS]   # against the server
//   mono smoke.exe send 127.0.0.1 PORT            # every operation once, e.g. to `oscdump PORT`
//   mono smoke.exe listen 127.0.0.1 9000 SECONDS KEEPALIVE_S   # subscribe, then only Poll()
//
// `run` checks the client-side validation, then subscribes, sends emotion/state/stinger/tempo, no
// outputs (silent), an output the server lacks, a bad state name and a status request, and prints
// one line per event received:
//   BEAT bar beat tempo time | BAR bar state v a t tempo | TRANSITION op beat
//   STATUS session state v a t tempo bar | ERROR code message | VALIDATION ok|FAIL what
// It stops once it has seen 6 beats including a downbeat, both errors and the status, or after the
// time limit (seconds, default 20). Exit status 0 when all were seen, 1 otherwise, 2 for bad usage.
// tests/test_bindings.py runs it and checks the printed events.

using System;
using System.Globalization;
using System.Threading;
using Affetto;

static class SmokeTest
{
    static int Main(string[] argv)
    {
        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        Thread.CurrentThread.CurrentCulture = CultureInfo.InvariantCulture;
        bool run = argv.Length >= 3 && argv.Length <= 4 && argv[0] == "run";
        bool send = argv.Length == 3 && argv[0] == "send";
        bool listen = argv.Length == 5 && argv[0] == "listen";
        if (!run && !send && !listen)
        {
            Console.Error.WriteLine("usage: mono smoke.exe run HOST OSC_PORT [SECONDS] | send HOST PORT"
                                    + " | listen HOST OSC_PORT SECONDS KEEPALIVE_S");
            return 2;
        }
        string host = argv[1];
        int port = int.Parse(argv[2], CultureInfo.InvariantCulture);
        if (send) return SendEveryOperation(host, port);
        if (listen)
            return Listen(host, port, double.Parse(argv[3], CultureInfo.InvariantCulture),
                          float.Parse(argv[4], CultureInfo.InvariantCulture));
        double seconds = argv.Length > 3 ? double.Parse(argv[3], CultureInfo.InvariantCulture) : 20.0;

        using (var client = new AffettoOscClient(host, port))
        {
            bool valid = CheckValidation(client);
            int beats = 0;
            bool downbeat = false, stateError = false, outputError = false, status = false;
            client.OnBeat += (bar, beat, tempo, time) =>
            {
                beats++;
                downbeat |= beat == 0;
                Console.WriteLine("BEAT {0} {1} {2:R} {3:R}", bar, beat, tempo, time);
            };
            client.OnBar += (bar, state, v, a, t, tempo) =>
                Console.WriteLine("BAR {0} {1} {2:R} {3:R} {4:R} {5:R}", bar, state, v, a, t, tempo);
            client.OnTransition += (op, beat) => Console.WriteLine("TRANSITION {0} {1:R}", op, beat);
            client.OnStatus += (session, state, v, a, t, tempo, bar) =>
            {
                status = true;
                Console.WriteLine("STATUS {0} {1} {2:R} {3:R} {4:R} {5:R} {6}", session, state, v, a, t, tempo, bar);
            };
            client.OnError += (code, message) =>
            {
                stateError |= message.Contains("no-such-state");
                outputError |= message.Contains("unknown output");
                Console.WriteLine("ERROR {0} {1}", code, message);
            };

            client.Subscribe();
            client.SetEmotion(0.5f, 0.6f, 0.2f);
            client.SetState("combat");
            client.Stinger("hit");
            client.Transport("tempo", 240);
            client.SetOutputs();  // silent: accepted by any server (OSC is not acknowledged)
            client.SetOutputs("audio");  // valid locally; a server without --audio must answer bad_argument
            client.SetState("no-such-state");  // valid locally; the server must answer bad_argument
            client.Status();

            var deadline = DateTime.UtcNow.AddSeconds(seconds);
            while (DateTime.UtcNow < deadline && !(beats >= 6 && downbeat && stateError && outputError && status))
            {
                client.Poll();
                Thread.Sleep(5);
            }
            Console.Out.Flush();
            return valid && beats >= 6 && downbeat && stateError && outputError && status ? 0 : 1;
        }
    }

    // Subscribe, then only Poll() (the keep-alive is the only request): prints
    // "BEAT elapsed_ms bar beat" and "ERROR code message" lines.
    static int Listen(string host, int port, double seconds, float keepAliveS)
    {
        using (var client = new AffettoOscClient(host, port))
        {
            client.KeepAliveSeconds = keepAliveS;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            client.OnBeat += (bar, beat, tempo, time) =>
                Console.WriteLine("BEAT {0} {1} {2}", clock.ElapsedMilliseconds, bar, beat);
            client.OnError += (code, message) => Console.WriteLine("ERROR {0} {1}", code, message);
            client.Subscribe();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                client.Poll();
                Thread.Sleep(5);
            }
        }
        return 0;
    }

    // Every operation once, in a fixed order (tests/test_bindings.py compares oscdump's view of them).
    static int SendEveryOperation(string host, int port)
    {
        using (var client = new AffettoOscClient(host, port))
        {
            client.SetEmotion(0.5f, -0.2f);
            client.SetEmotion(0.25f, 0.75f, -1f, "bar");
            client.SetState("combat", "phrase");
            client.SetParam("health", 0.3f);
            client.Stinger("hit");
            client.Leitmotif("hero");
            client.Transport("start");
            client.Transport("tempo", 120.5f);
            client.Transport("seed", 42);
            client.Transport("sync", "beat");
            client.Subscribe();
            client.Unsubscribe();
            client.Session("level-3");
            client.SetOutputs();
            client.SetOutputs("audio", "midi");
            client.Text("The wolf howled.");
            client.Status();
            Console.WriteLine("SENT {0}", client.LocalPort);
        }
        return 0;
    }

    // Each bad call must throw an ArgumentException (or a subclass) before anything is sent.
    static bool CheckValidation(AffettoOscClient client)
    {
        var bad = new Action[]
        {
            () => client.SetEmotion(float.NaN, 0f),
            () => client.SetEmotion(0f, float.PositiveInfinity),
            () => client.SetEmotion(1.5f, 0f),
            () => client.SetEmotion(0f, 0f, -1.01f),
            () => client.SetEmotion(0f, 0f, null, "later"),
            () => client.SetState(""),
            () => client.SetState(new string('x', 65)),
            () => client.SetState(null),
            () => client.SetParam("health", float.NaN),
            () => client.Stinger("a\0b"),
            () => client.Transport("rewind"),
            () => client.Transport("tempo"),
            () => client.Transport("tempo", 1000f),
            () => client.Transport("seed", -1),
            () => client.Transport("sync", "sometimes"),
            () => client.Session(""),
            () => client.SetOutputs(null),
            () => client.SetOutputs(""),
            () => client.SetOutputs("audio", null),
            () => client.SetOutputs(new string('x', 65)),
            () => client.SetOutputs("a", "b", "c", "d", "e", "f", "g", "h", "i"),
            () => client.Text(new string('x', 10001)),
            () => client.Text(""),
        };
        bool ok = true;
        for (int i = 0; i < bad.Length; i++)
        {
            try
            {
                bad[i]();
                Console.WriteLine("VALIDATION FAIL case {0} did not throw", i);
                ok = false;
            }
            catch (ArgumentException)
            {
                // expected
            }
        }
        if (ok) Console.WriteLine("VALIDATION ok {0}", bad.Length);
        return ok;
    }
}
