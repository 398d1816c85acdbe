// AffettoComponent.cpp: see AffettoComponent.h and bindings/unreal/README.md.

#include "AffettoComponent.h"

#include "Engine/World.h"
#include "HAL/PlatformTime.h"
#include "OSCClient.h"
#include "OSCManager.h"
#include "OSCServer.h"

DEFINE_LOG_CATEGORY_STATIC(LogAffetto, Log, All);

namespace
{
	constexpr int32 AffettoMaxNameChars = 64;
	constexpr int32 AffettoMaxOutputs = 8;
	constexpr int32 AffettoMaxTokenChars = 256;
	constexpr int32 AffettoMaxTextChars = 10000;
	// The longest line whose /affetto/text message fits an OSC packet (8 KiB): the address (16 bytes), the type
	// tags (4) and the string with its NUL, padded to 4 bytes.
	constexpr int32 AffettoMaxTextBytes = 8192 - 16 - 4 - 1;
	constexpr float AffettoMaxFadeSeconds = 60.f;
	const TCHAR* const AffettoSyncPoints[] = { TEXT("immediate"), TEXT("beat"), TEXT("bar"), TEXT("phrase") };

	// Line's UTF-8 bytes, one per TCHAR. The OSC plugin writes a string one byte per TCHAR (its stream's WriteString
	// keeps each TCHAR's low byte), which is right for ASCII only: sent this way, a line's "é" or "’" reaches the
	// server as the UTF-8 it reads. (TCHAR is UTF-16: a surrogate pair is one code point; a lone one is U+FFFD.)
	FString OscUtf8(const FString& Line)
	{
		FString Bytes;
		auto Append = [&Bytes](uint32 Byte) { Bytes.AppendChar(static_cast<TCHAR>(Byte)); };
		for (int32 Index = 0; Index < Line.Len(); ++Index)
		{
			uint32 C = static_cast<uint32>(Line[Index]);
			if (C >= 0xD800 && C <= 0xDBFF && Index + 1 < Line.Len())
			{
				const uint32 Low = static_cast<uint32>(Line[Index + 1]);
				if (Low >= 0xDC00 && Low <= 0xDFFF)
				{
					C = 0x10000 + ((C - 0xD800) << 10) + (Low - 0xDC00);
					++Index;
				}
			}
			if (C >= 0xD800 && C <= 0xDFFF)
			{
				C = 0xFFFD;
			}
			if (C < 0x80)
			{
				Append(C);
			}
			else if (C < 0x800)
			{
				Append(0xC0 | (C >> 6));
				Append(0x80 | (C & 0x3F));
			}
			else if (C < 0x10000)
			{
				Append(0xE0 | (C >> 12));
				Append(0x80 | ((C >> 6) & 0x3F));
				Append(0x80 | (C & 0x3F));
			}
			else
			{
				Append(0xF0 | (C >> 18));
				Append(0x80 | ((C >> 12) & 0x3F));
				Append(0x80 | ((C >> 6) & 0x3F));
				Append(0x80 | (C & 0x3F));
			}
		}
		return Bytes;
	}
}

UAffettoComponent::UAffettoComponent()
{
	PrimaryComponentTick.bCanEverTick = false;  // events arrive through the OSC server's delegate
}

void UAffettoComponent::BeginPlay()
{
	Super::BeginPlay();

	Client = UOSCManager::CreateOSCClient(ServerHost, ServerPort, TEXT("AffettoClient"), this);
	// Start listening only after the handler and the allowlist are in place.
	Server = UOSCManager::CreateOSCServer(ListenAddress, ListenPort, false, false, TEXT("AffettoEvents"), this);
	if (!Client || !Server)
	{
		UE_LOG(LogAffetto, Error, TEXT("affetto: cannot create the OSC client (%s:%d) or server (%s:%d)"),
			*ServerHost, ServerPort, *ListenAddress, ListenPort);
		return;
	}
	Server->OnOscMessageReceived.AddDynamic(this, &UAffettoComponent::HandleOscMessage);
	Server->SetAllowlistClientsEnabled(true);  // anyone can reach an open UDP port: accept the server only
	Server->AddAllowlistedClient(ServerHost);
	Server->Listen();

	if (bSubscribeOnBeginPlay)
	{
		Subscribe();
	}
	if (!SessionName.IsEmpty())
	{
		Session(SessionName);
	}
	if (bNotesOnBeginPlay)
	{
		FOSCMessage Message = MakeMessage(TEXT("/affetto/output"));
		UOSCManager::AddString(Message, TEXT("notes"));
		Send(Message);
	}
	if (KeepAliveSeconds > 0.f)
	{
		const float Check = FMath::Max(0.1f, KeepAliveSeconds / 4.f);
		GetWorld()->GetTimerManager().SetTimer(KeepAliveTimer, this, &UAffettoComponent::KeepAlive, Check, true);
	}
}

void UAffettoComponent::EndPlay(const EEndPlayReason::Type EndPlayReason)
{
	if (UWorld* World = GetWorld())
	{
		World->GetTimerManager().ClearTimer(KeepAliveTimer);
	}
	if (Server)
	{
		Server->OnOscMessageReceived.RemoveDynamic(this, &UAffettoComponent::HandleOscMessage);
		Server->Stop();
	}
	Server = nullptr;
	Client = nullptr;  // the OSC plugin closes the client's socket when it is destroyed
	Super::EndPlay(EndPlayReason);
}

// ---- operations ---------------------------------------------------------------------------------

bool UAffettoComponent::SetEmotion(float Valence, float Arousal, const FString& Sync)
{
	if (!CheckUnit(Valence, TEXT("valence")) || !CheckUnit(Arousal, TEXT("arousal")) || !CheckSync(Sync))
	{
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/emotion"));
	UOSCManager::AddFloat(Message, Valence);
	UOSCManager::AddFloat(Message, Arousal);
	if (!Sync.IsEmpty())
	{
		UOSCManager::AddString(Message, Sync);
	}
	return Send(Message);
}

bool UAffettoComponent::SetEmotionWithTension(float Valence, float Arousal, float Tension, const FString& Sync)
{
	if (!CheckUnit(Valence, TEXT("valence")) || !CheckUnit(Arousal, TEXT("arousal"))
		|| !CheckUnit(Tension, TEXT("tension")) || !CheckSync(Sync))
	{
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/emotion"));
	UOSCManager::AddFloat(Message, Valence);
	UOSCManager::AddFloat(Message, Arousal);
	UOSCManager::AddFloat(Message, Tension);
	if (!Sync.IsEmpty())
	{
		UOSCManager::AddString(Message, Sync);
	}
	return Send(Message);
}

bool UAffettoComponent::SetState(const FString& Name, const FString& Sync)
{
	if (!CheckName(Name, TEXT("state")) || !CheckSync(Sync))
	{
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/state"));
	UOSCManager::AddString(Message, Name);
	if (!Sync.IsEmpty())
	{
		UOSCManager::AddString(Message, Sync);
	}
	return Send(Message);
}

bool UAffettoComponent::SetParam(const FString& Name, float Value)
{
	if (!CheckName(Name, TEXT("parameter")))
	{
		return false;
	}
	if (!FMath::IsFinite(Value))
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: parameter %s: the value must be finite"), *Name);
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/param"));
	UOSCManager::AddString(Message, Name);
	UOSCManager::AddFloat(Message, Value);
	return Send(Message);
}

bool UAffettoComponent::Stinger(const FString& Name)
{
	if (!CheckName(Name, TEXT("stinger")))
	{
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/stinger"));
	UOSCManager::AddString(Message, Name);
	return Send(Message);
}

bool UAffettoComponent::Leitmotif(const FString& Name, const FString& Sync)
{
	if (!CheckName(Name, TEXT("leitmotif")) || !CheckSync(Sync))
	{
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/leitmotif"));
	UOSCManager::AddString(Message, Name);
	if (!Sync.IsEmpty())
	{
		UOSCManager::AddString(Message, Sync);
	}
	return Send(Message);
}

bool UAffettoComponent::TransportStart()
{
	FOSCMessage Message = MakeMessage(TEXT("/affetto/transport"));
	UOSCManager::AddString(Message, TEXT("start"));
	return Send(Message);
}

bool UAffettoComponent::TransportStop(float FadeOutS)
{
	if (!CheckFade(FadeOutS, TEXT("the stop's fade-out")))
	{
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/transport"));
	UOSCManager::AddString(Message, TEXT("stop"));
	if (FadeOutS > 0.f)
	{
		UOSCManager::AddFloat(Message, FadeOutS);
	}
	return Send(Message);
}

bool UAffettoComponent::TransportPause()
{
	FOSCMessage Message = MakeMessage(TEXT("/affetto/transport"));
	UOSCManager::AddString(Message, TEXT("pause"));
	return Send(Message);
}

bool UAffettoComponent::TransportResume()
{
	FOSCMessage Message = MakeMessage(TEXT("/affetto/transport"));
	UOSCManager::AddString(Message, TEXT("resume"));
	return Send(Message);
}

bool UAffettoComponent::SetVolume(float Level, float FadeS, const FString& Layer)
{
	if (!FMath::IsFinite(Level) || Level < 0.f || Level > 1.f)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: the volume level must be a finite number in [0, 1], got %f"), Level);
		return false;
	}
	if (!CheckFade(FadeS, TEXT("the volume's fade")) || (!Layer.IsEmpty() && !CheckName(Layer, TEXT("layer"))))
	{
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/volume"));  // f:level f:fade_s [s:layer]
	UOSCManager::AddFloat(Message, Level);
	UOSCManager::AddFloat(Message, FadeS);
	if (!Layer.IsEmpty())
	{
		UOSCManager::AddString(Message, Layer);
	}
	return Send(Message);
}

bool UAffettoComponent::SetTempo(float Bpm)
{
	if (!FMath::IsFinite(Bpm) || (Bpm != 0.f && (Bpm < 20.f || Bpm > 400.f)))
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: tempo must be 0 (follow arousal) or 20..400 BPM, got %f"), Bpm);
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/transport"));
	UOSCManager::AddString(Message, TEXT("tempo"));
	UOSCManager::AddFloat(Message, Bpm);
	return Send(Message);
}

bool UAffettoComponent::SetSeed(int32 Seed)
{
	if (Seed < 0)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: the seed must be >= 0, got %d"), Seed);
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/transport"));
	UOSCManager::AddString(Message, TEXT("seed"));
	UOSCManager::AddInt32(Message, Seed);
	return Send(Message);
}

bool UAffettoComponent::SetDefaultSync(const FString& Sync)
{
	if (Sync.IsEmpty() || !CheckSync(Sync))
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: the default sync must be immediate, beat, bar or phrase"));
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/transport"));
	UOSCManager::AddString(Message, TEXT("sync"));
	UOSCManager::AddString(Message, Sync);
	return Send(Message);
}

bool UAffettoComponent::Subscribe()
{
	FOSCMessage Message = MakeMessage(TEXT("/affetto/subscribe"));
	UOSCManager::AddInt32(Message, ListenPort);
	return Send(Message);
}

bool UAffettoComponent::Unsubscribe()
{
	FOSCMessage Message = MakeMessage(TEXT("/affetto/unsubscribe"));
	return Send(Message);
}

bool UAffettoComponent::Session(const FString& Name)
{
	if (!CheckName(Name, TEXT("session")))
	{
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/session"));
	UOSCManager::AddString(Message, Name);
	return Send(Message);
}

bool UAffettoComponent::SetOutputs(const TArray<FString>& Names)
{
	if (Names.Num() > AffettoMaxOutputs)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: at most %d outputs, got %d"), AffettoMaxOutputs, Names.Num());
		return false;
	}
	for (const FString& Name : Names)
	{
		if (!CheckName(Name, TEXT("output")))
		{
			return false;
		}
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/output"));  // no names: silent
	for (const FString& Name : Names)
	{
		UOSCManager::AddString(Message, Name);
	}
	return Send(Message);
}

bool UAffettoComponent::Text(const FString& Line)
{
	if (Line.IsEmpty() || Line.Len() > AffettoMaxTextChars)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: the text must be 1..%d characters, got %d"), AffettoMaxTextChars,
			Line.Len());
		return false;
	}
	const FString Bytes = OscUtf8(Line);
	if (Bytes.Len() > AffettoMaxTextBytes)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: the text is %d bytes in UTF-8; one OSC packet holds %d"),
			Bytes.Len(), AffettoMaxTextBytes);
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/text"));
	UOSCManager::AddString(Message, Bytes);
	return Send(Message);
}

bool UAffettoComponent::Status()
{
	FOSCMessage Message = MakeMessage(TEXT("/affetto/status"));
	return Send(Message);
}

bool UAffettoComponent::Sessions()
{
	FOSCMessage Message = MakeMessage(TEXT("/affetto/sessions"));
	return Send(Message);
}

bool UAffettoComponent::Hello(const FString& Token)
{
	if (Token.Len() > AffettoMaxTokenChars)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: the token must be at most %d characters, got %d"),
			AffettoMaxTokenChars, Token.Len());
		return false;
	}
	FOSCMessage Message = MakeMessage(TEXT("/affetto/hello"));
	if (!Token.IsEmpty())
	{
		UOSCManager::AddString(Message, Token);
	}
	return Send(Message);
}

// ---- plumbing -----------------------------------------------------------------------------------

FOSCMessage UAffettoComponent::MakeMessage(const FString& Address)
{
	FOSCMessage Message;
	Message.SetAddress(FOSCAddress(Address));
	return Message;
}

bool UAffettoComponent::Send(FOSCMessage& Message)
{
	if (!Client)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: not started (BeginPlay has not run, or the client failed)"));
		return false;
	}
	Client->SendOSCMessage(Message);
	LastSendSeconds = FPlatformTime::Seconds();
	return true;
}

void UAffettoComponent::KeepAlive()
{
	if (FPlatformTime::Seconds() - LastSendSeconds >= KeepAliveSeconds)
	{
		Status();
	}
}

// Called on the game thread by the OSC server for every message received.
void UAffettoComponent::HandleOscMessage(const FOSCMessage& Message, const FString& IPAddress, int32 Port)
{
	const FString Address = Message.GetAddress().GetFullPath();
	bool bParsed = true;
	if (Address == TEXT("/affetto/beat"))
	{
		int32 Bar = 0, Beat = 0;
		float Tempo = 0.f, Time = 0.f;
		bParsed = UOSCManager::GetInt32(Message, 0, Bar) && UOSCManager::GetInt32(Message, 1, Beat)
			&& UOSCManager::GetFloat(Message, 2, Tempo) && UOSCManager::GetFloat(Message, 3, Time);
		if (bParsed)
		{
			OnBeat.Broadcast(Bar, Beat, Tempo, Time);
		}
	}
	else if (Address == TEXT("/affetto/bar"))
	{
		int32 Bar = 0;
		FString State, Key, Layers;
		float Valence = 0.f, Arousal = 0.f, Tension = 0.f, Tempo = 0.f, Time = 0.f;
		bParsed = UOSCManager::GetInt32(Message, 0, Bar) && UOSCManager::GetString(Message, 1, State)
			&& UOSCManager::GetFloat(Message, 2, Valence) && UOSCManager::GetFloat(Message, 3, Arousal)
			&& UOSCManager::GetFloat(Message, 4, Tension) && UOSCManager::GetFloat(Message, 5, Tempo)
			&& UOSCManager::GetString(Message, 6, Key) && UOSCManager::GetString(Message, 7, Layers)
			&& UOSCManager::GetFloat(Message, 8, Time);
		if (bParsed)
		{
			OnBar.Broadcast(Bar, State, Valence, Arousal, Tension, Tempo, Key, SplitNames(Layers), Time);
		}
	}
	else if (Address == TEXT("/affetto/note"))
	{
		int32 Channel = 0, Pitch = 0, Velocity = 0;
		float Time = 0.f;
		FString Layer;
		bParsed = UOSCManager::GetInt32(Message, 0, Channel) && UOSCManager::GetInt32(Message, 1, Pitch)
			&& UOSCManager::GetInt32(Message, 2, Velocity) && UOSCManager::GetFloat(Message, 3, Time)
			&& UOSCManager::GetString(Message, 4, Layer);
		if (bParsed)
		{
			OnNote.Broadcast(Channel, Pitch, Velocity, Layer, Time);
		}
	}
	else if (Address == TEXT("/affetto/volume"))
	{
		FString Layer;
		float Level = 0.f, Fade = 0.f, Time = 0.f;
		bParsed = UOSCManager::GetString(Message, 0, Layer) && UOSCManager::GetFloat(Message, 1, Level)
			&& UOSCManager::GetFloat(Message, 2, Fade) && UOSCManager::GetFloat(Message, 3, Time);
		if (bParsed)
		{
			OnVolume.Broadcast(Layer, Level, Fade, Time);
		}
	}
	else if (Address == TEXT("/affetto/transition"))
	{
		FString Op;
		float Beat = 0.f;
		bParsed = UOSCManager::GetString(Message, 0, Op) && UOSCManager::GetFloat(Message, 1, Beat);
		if (bParsed)
		{
			OnTransition.Broadcast(Op, Beat);
		}
	}
	else if (Address == TEXT("/affetto/status"))
	{
		FAffettoStatus S;
		int32 Playing = 0, Paused = 0;
		FString Outputs, Params, States, Stingers, Layers;
		bParsed = UOSCManager::GetString(Message, 0, S.Session) && UOSCManager::GetString(Message, 1, S.State)
			&& UOSCManager::GetFloat(Message, 2, S.Valence) && UOSCManager::GetFloat(Message, 3, S.Arousal)
			&& UOSCManager::GetFloat(Message, 4, S.Tension) && UOSCManager::GetFloat(Message, 5, S.TempoBpm)
			&& UOSCManager::GetInt32(Message, 6, S.Bar) && UOSCManager::GetInt32(Message, 7, Playing)
			&& UOSCManager::GetInt32(Message, 8, Paused) && UOSCManager::GetString(Message, 9, S.Key)
			&& UOSCManager::GetString(Message, 10, S.Profile) && UOSCManager::GetString(Message, 11, Outputs)
			&& UOSCManager::GetString(Message, 12, Params) && UOSCManager::GetString(Message, 13, States)
			&& UOSCManager::GetString(Message, 14, Stingers) && UOSCManager::GetString(Message, 15, Layers)
			&& UOSCManager::GetFloat(Message, 16, S.Level);
		if (bParsed)
		{
			S.bPlaying = Playing != 0;
			S.bPaused = Paused != 0;
			S.Outputs = SplitNames(Outputs);
			S.Params = SplitNames(Params);
			S.States = SplitNames(States);
			S.Stingers = SplitNames(Stingers);
			S.Layers = SplitNames(Layers);
			OnStatus.Broadcast(S);
		}
	}
	else if (Address == TEXT("/affetto/hello"))
	{
		FAffettoHello H;
		FString States, Stingers, Params, Outputs, Layers;
		bParsed = UOSCManager::GetString(Message, 0, H.Session) && UOSCManager::GetInt32(Message, 1, H.Version)
			&& UOSCManager::GetString(Message, 2, States) && UOSCManager::GetString(Message, 3, Stingers)
			&& UOSCManager::GetString(Message, 4, Params) && UOSCManager::GetString(Message, 5, Outputs)
			&& UOSCManager::GetString(Message, 6, Layers);
		if (bParsed)
		{
			H.States = SplitNames(States);
			H.Stingers = SplitNames(Stingers);
			H.Params = SplitNames(Params);
			H.AvailableOutputs = SplitNames(Outputs);
			H.LayerNames = SplitNames(Layers);
			OnHello.Broadcast(H);
		}
	}
	else if (Address == TEXT("/affetto/sessions"))
	{
		FString Names, Profiles;
		bParsed = UOSCManager::GetString(Message, 0, Names) && UOSCManager::GetString(Message, 1, Profiles);
		if (bParsed)
		{
			OnSessions.Broadcast(SplitNames(Names), SplitNames(Profiles));
		}
	}
	else if (Address == TEXT("/affetto/text"))
	{
		FAffettoText T;
		int32 Changed = 0;
		bParsed = UOSCManager::GetFloat(Message, 0, T.Valence) && UOSCManager::GetFloat(Message, 1, T.Arousal)
			&& UOSCManager::GetFloat(Message, 2, T.Confidence) && UOSCManager::GetFloat(Message, 3, T.SceneValence)
			&& UOSCManager::GetFloat(Message, 4, T.SceneArousal) && UOSCManager::GetInt32(Message, 5, Changed)
			&& UOSCManager::GetString(Message, 6, T.Scene);
		if (bParsed)
		{
			T.bChanged = Changed != 0;
			OnText.Broadcast(T);
		}
	}
	else if (Address == TEXT("/affetto/challenge"))
	{
		// The server sends events only once the listening port proves it receives them: echo the
		// subscription's nonce (see PROTOCOL.md, Subscriptions).
		FString Nonce;
		bParsed = UOSCManager::GetString(Message, 0, Nonce);
		if (bParsed)
		{
			FOSCMessage Confirm = MakeMessage(TEXT("/affetto/confirm"));
			UOSCManager::AddString(Confirm, Nonce);
			Send(Confirm);
		}
	}
	else if (Address == TEXT("/affetto/error"))
	{
		FString Code, Why;
		bParsed = UOSCManager::GetString(Message, 0, Code) && UOSCManager::GetString(Message, 1, Why);
		if (bParsed)
		{
			UE_LOG(LogAffetto, Warning, TEXT("affetto: %s: %s"), *Code, *Why);
			OnError.Broadcast(Code, Why);
		}
	}
	if (!bParsed)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: unexpected arguments in %s from %s:%d"), *Address, *IPAddress, Port);
	}
}

// ---- validation ---------------------------------------------------------------------------------

bool UAffettoComponent::CheckUnit(float Value, const TCHAR* What)
{
	if (!FMath::IsFinite(Value) || Value < -1.f || Value > 1.f)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: %s must be a finite number in [-1, 1], got %f"), What, Value);
		return false;
	}
	return true;
}

bool UAffettoComponent::CheckName(const FString& Name, const TCHAR* What)
{
	if (Name.IsEmpty() || Name.Len() > AffettoMaxNameChars)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: the %s name must be 1..%d characters, got '%s'"), What,
			AffettoMaxNameChars, *Name);
		return false;
	}
	return true;
}

bool UAffettoComponent::CheckFade(float Seconds, const TCHAR* What)
{
	if (!FMath::IsFinite(Seconds) || Seconds < 0.f || Seconds > AffettoMaxFadeSeconds)
	{
		UE_LOG(LogAffetto, Warning, TEXT("affetto: %s must be in [0, %.0f] seconds, got %f"), What, AffettoMaxFadeSeconds,
			Seconds);
		return false;
	}
	return true;
}

// A list of names over OSC: one string, the names separated by commas ("": none).
TArray<FString> UAffettoComponent::SplitNames(const FString& Joined)
{
	TArray<FString> Names;
	Joined.ParseIntoArray(Names, TEXT(","), true);
	return Names;
}

bool UAffettoComponent::CheckSync(const FString& Sync)
{
	if (Sync.IsEmpty())
	{
		return true;  // the server's default
	}
	for (const TCHAR* Point : AffettoSyncPoints)
	{
		if (Sync.Equals(Point, ESearchCase::CaseSensitive))  // FString's == ignores case; the server does not
		{
			return true;
		}
	}
	UE_LOG(LogAffetto, Warning, TEXT("affetto: sync must be immediate, beat, bar or phrase, got '%s'"), *Sync);
	return false;
}
